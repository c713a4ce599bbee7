package server

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Values of the result label.
const (
	resultOK       = "ok"
	resultError    = "error"    // the verb, or the daemon, answered a CNI error
	resultCanceled = "canceled" // the shim went away while waiting for a slot
)

// metrics are the daemon's own series; per-delegate ones live elsewhere.
type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inFlight prometheus.Gauge
	waiting  prometheus.Gauge
	// hotplugged counts interfaces hot-plug added and removed.
	hotplugged *prometheus.CounterVec
}

// newMetrics builds the series and registers them on reg when it is not
// nil. The series work even when registering fails.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "braid_requests_total",
			Help: "CNI calls the daemon answered, by verb and result.",
		}, []string{"verb", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "braid_request_duration_seconds",
			Help:    "Time from receiving a CNI call to answering it, waiting included, by verb and result.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 15),
		}, []string{"verb", "result"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "braid_requests_in_flight",
			Help: "CNI verbs running now.",
		}),
		waiting: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "braid_requests_waiting",
			Help: "CNI calls waiting for a free slot.",
		}),
		hotplugged: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "braid_hotplug_interfaces_total",
			Help: "Interfaces hot-plug added to or removed from running pods, by verb (add, remove).",
		}, []string{"verb"}),
	}
	if reg == nil {
		return m, nil
	}
	var errs []error
	for name, c := range map[string]prometheus.Collector{
		"braid_requests_total":           m.requests,
		"braid_request_duration_seconds": m.duration,
		"braid_requests_in_flight":       m.inFlight,
		"braid_requests_waiting":         m.waiting,
		"braid_hotplug_interfaces_total": m.hotplugged,
	} {
		if err := reg.Register(c); err != nil {
			errs = append(errs, fmt.Errorf("register metric %s: %w", name, err))
		}
	}
	return m, errors.Join(errs...)
}
