package braidd

import (
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/braid-cni/braid/journal"
	"github.com/braid-cni/braid/kube"
	"github.com/braid-cni/braid/status"
)

// countAPICalls counts the daemon's requests to the API server by method
// and status code (braid_api_requests_total); "error" when none came back.
func countAPICalls(reg prometheus.Registerer) func(http.RoundTripper) http.RoundTripper {
	calls := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "braid_api_requests_total",
		Help: "Requests braidd made to the API server, by method and status code.",
	}, []string{"method", "code"})
	reg.MustRegister(calls)
	return func(next http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			resp, err := next.RoundTrip(r)
			code := "error"
			if err == nil {
				code = strconv.Itoa(resp.StatusCode)
			}
			calls.WithLabelValues(r.Method, code).Inc()
			return resp, err
		})
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// registerGauges exposes what the daemon holds: journal entries (one per
// attached sandbox on this node) and the caches' size and live-GET
// fallbacks, read when scraped.
func registerGauges(reg prometheus.Registerer, cache *kube.Cache, j *journal.Store, statuses *status.Queue) {
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "braid_journal_entries",
			Help: "Sandboxes with an attachment journal on this node.",
		}, func() float64 {
			ids, err := j.List()
			if err != nil {
				return -1
			}
			return float64(len(ids))
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "braid_cache_pods", Help: "Pods in the informer cache."},
			func() float64 { return float64(cache.Stats().Pods) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "braid_cache_nads", Help: "NetworkAttachmentDefinitions in the informer cache."},
			func() float64 { return float64(cache.Stats().NADs) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "braid_cache_fallbacks_total", Help: "Live GETs for objects the cache had not seen."},
			func() float64 { s := cache.Stats(); return float64(s.PodFallbacks + s.NADFallbacks) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "braid_status_pending", Help: "Pods whose network-status is queued and not written yet."},
			func() float64 { return float64(statuses.Pending()) }),
	)
}
