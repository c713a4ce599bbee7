package main

import (
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
)

// TestScrape: a labelled name reads its one series, a bare name sums them.
func TestScrape(t *testing.T) {
	page := strings.Join([]string{
		`# TYPE braid_request_duration_seconds histogram`,
		`braid_request_duration_seconds_sum{result="ok",verb="ADD"} 1.5`,
		`braid_request_duration_seconds_sum{result="ok",verb="HOTPLUG"} 0.25`,
		`braid_cache_fallbacks_total 3`,
		`braid_api_requests_total{code="200",verb="PATCH"} 2`,
		`braid_api_requests_total{code="201",verb="POST"} 1`,
	}, "\n")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(page)) }))
	t.Cleanup(srv.Close)
	got, err := scrape(t.Context(), strings.TrimPrefix(srv.URL, "http://"),
		`braid_request_duration_seconds_sum{result="ok",verb="HOTPLUG"}`, "braid_cache_fallbacks_total", "braid_api_requests_total", "missing")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{
		`braid_request_duration_seconds_sum{result="ok",verb="HOTPLUG"}`: 0.25,
		"braid_cache_fallbacks_total":                                    3,
		"braid_api_requests_total":                                       3,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("scrape = %v, want %v", got, want)
	}
}
