package server

import (
	"context"
	"errors"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/braid-cni/braid/delegate"
)

// stubInvoker answers ADD with an empty result and fails DEL as told.
type stubInvoker struct{ delErr error }

func (s *stubInvoker) Add(context.Context, *delegate.Delegate, delegate.Runtime) (types.Result, error) {
	return &current.Result{CNIVersion: "1.0.0"}, nil
}
func (s *stubInvoker) Del(context.Context, *delegate.Delegate, delegate.Runtime) error {
	return s.delErr
}
func (s *stubInvoker) Check(context.Context, *delegate.Delegate, delegate.Runtime) error {
	return nil
}
func (s *stubInvoker) Status(context.Context, *delegate.Delegate) error { return nil }
func (s *stubInvoker) GC(context.Context, *delegate.Delegate, []types.GCAttachment) error {
	return nil
}
func (s *stubInvoker) SetCachedResult(*delegate.Delegate, delegate.Runtime, types.Result) error {
	return nil
}

func TestDelegateMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	wrap, err := DelegateMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	d, err := delegate.Load([]byte(`{"cniVersion":"1.0.0","name":"blue","plugins":[{"type":"bridge"},{"type":"tuning"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	inv := wrap(&stubInvoker{delErr: types.NewError(types.ErrTryAgainLater, "busy", "")})
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		if _, err := inv.Add(ctx, d, delegate.Runtime{}); err != nil {
			t.Fatal(err)
		}
	}
	var te *types.Error
	if err := inv.Del(ctx, d, delegate.Runtime{}); !errors.As(err, &te) || te.Code != types.ErrTryAgainLater {
		t.Fatalf("Del error = %v, want the delegate's own, unchanged", err)
	}
	if n := testutil.CollectAndCount(reg, "braid_delegate_duration_seconds"); n != 2 {
		t.Errorf("duration series = %d, want ADD and DEL", n)
	}
	m := inv.(*measured).m
	if got := testutil.ToFloat64(m.errors.WithLabelValues("DEL", "blue", "bridge,tuning", "11")); got != 1 {
		t.Errorf("DEL errors with code 11 = %v, want 1", got)
	}
	if got := testutil.CollectAndCount(m.errors); got != 1 {
		t.Errorf("error series = %d, want only the DEL one", got)
	}
	if _, err := DelegateMetrics(reg); err == nil {
		t.Error("registering the delegate metrics twice succeeded")
	}
}
