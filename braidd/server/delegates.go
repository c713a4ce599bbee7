package server

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/braid-cni/braid/attacher"
	"github.com/braid-cni/braid/delegate"
)

// DelegateMetrics returns a wrapper for attacher.Options.WrapInvoker that
// measures every delegate call: braid_delegate_duration_seconds and
// braid_delegate_errors_total, by verb, network (the CNI config name) and
// plugin chain.
func DelegateMetrics(reg prometheus.Registerer) (func(attacher.Invoker) attacher.Invoker, error) {
	m := &delegateMetrics{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "braid_delegate_duration_seconds",
			Help:    "Time a delegate network's plugins took, by verb, network and plugin chain.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}, []string{"verb", "network", "plugin"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "braid_delegate_errors_total",
			Help: "Delegate calls that failed, by verb, network, plugin chain and CNI code.",
		}, []string{"verb", "network", "plugin", "code"}),
	}
	if reg != nil {
		if err := errors.Join(reg.Register(m.duration), reg.Register(m.errors)); err != nil {
			return nil, fmt.Errorf("register delegate metrics: %w", err)
		}
	}
	return func(inv attacher.Invoker) attacher.Invoker { return &measured{Invoker: inv, m: m} }, nil
}

type delegateMetrics struct {
	duration *prometheus.HistogramVec
	errors   *prometheus.CounterVec
}

func (m *delegateMetrics) observe(verb string, d *delegate.Delegate, start time.Time, err error) {
	chain := strings.Join(d.Types(), ",")
	m.duration.WithLabelValues(verb, d.Name(), chain).Observe(time.Since(start).Seconds())
	if err == nil {
		return
	}
	code := "999"
	var te *types.Error
	if errors.As(err, &te) {
		code = fmt.Sprint(te.Code)
	}
	m.errors.WithLabelValues(verb, d.Name(), chain, code).Inc()
}

// measured is an attacher.Invoker that times each call of the one it wraps.
type measured struct {
	attacher.Invoker
	m *delegateMetrics
}

func (i *measured) Add(ctx context.Context, d *delegate.Delegate, rt delegate.Runtime) (types.Result, error) {
	start := time.Now()
	res, err := i.Invoker.Add(ctx, d, rt)
	i.m.observe("ADD", d, start, err)
	return res, err
}

func (i *measured) Del(ctx context.Context, d *delegate.Delegate, rt delegate.Runtime) error {
	start := time.Now()
	err := i.Invoker.Del(ctx, d, rt)
	i.m.observe("DEL", d, start, err)
	return err
}

func (i *measured) Check(ctx context.Context, d *delegate.Delegate, rt delegate.Runtime) error {
	start := time.Now()
	err := i.Invoker.Check(ctx, d, rt)
	i.m.observe("CHECK", d, start, err)
	return err
}
