package attacher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/braid-cni/braid/plan"
	"github.com/braid-cni/braid/status"
)

// eventsOf returns the events of type eventType the recorder got, sorted by
// message (events may be sent concurrently).
func eventsOf(r *fakeRecorder, eventType string) []event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []event
	for _, e := range r.events {
		if e.eventType == eventType {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b event) int { return strings.Compare(a.message, b.message) })
	return out
}

var webPod = status.PodRef{Namespace: "ns1", Name: "web", UID: "uid-c1"}

// TestAddFailureEvents: every failed ADD leaves exactly one Warning event
// per failure on the pod, naming the interface, the network, the plugin
// and the delegate's own message.
func TestAddFailureEvents(t *testing.T) {
	tests := []struct {
		name      string
		fail      map[string]error // "VERB network" -> error
		mutate    func(f *fixture, p *plan.Plan)
		wantMsgs  []string // the Warning events' messages, sorted
		wantEvent string   // reason
	}{
		{
			name:     "delegate error with a CNI code",
			fail:     map[string]error{"ADD green": delegateError("bridge", types.ErrInvalidNetworkConfig, "invalid CIDR 10.1.0.0/33")},
			wantMsgs: []string{"add net2 (ns1/green, bridge): invalid CIDR 10.1.0.0/33: some details"},
		},
		{
			name:     "cluster network",
			fail:     map[string]error{"ADD cluster": delegateError("ptp", types.ErrIOFailure, "no space")},
			wantMsgs: []string{"add eth0 (cluster, ptp): no space: some details"},
		},
		{
			name:     "delegate error without a CNI code",
			fail:     map[string]error{"ADD blue": errors.New("boom")},
			wantMsgs: []string{"add net1 (ns1/blue, macvlan): boom"},
		},
		{
			name: "config that does not load",
			mutate: func(_ *fixture, p *plan.Plan) {
				p.Attachments[2].Config = json.RawMessage(`{"cniVersion":"1.0.0","name":"green"}`)
			},
			wantMsgs: []string{"add net2 (ns1/green, ?): "},
		},
		{
			name: "parallel: each failure its own event",
			fail: map[string]error{
				"ADD blue":  delegateError("macvlan", 12, "master eth9 not found"),
				"ADD green": delegateError("bridge", types.ErrTryAgainLater, "busy"),
			},
			mutate:   func(f *fixture, _ *plan.Plan) { f.attacher.Parallel = true },
			wantMsgs: []string{"add net1 (ns1/blue, macvlan): master eth9 not found: some details", "add net2 (ns1/green, bridge): busy: some details"},
		},
		{
			name: "status write fails after the delegates",
			mutate: func(f *fixture, _ *plan.Plan) {
				f.recorder.recordErr = apierrors.NewServiceUnavailable("etcd is down")
			},
			wantMsgs: []string{"add: record network-status: etcd is down"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			for k, v := range tt.fail {
				f.invoker.fail[k] = v
			}
			p := testPlan("c1", "1.0.0")
			if tt.mutate != nil {
				tt.mutate(f, p)
			}
			if _, err := f.attacher.addPlan(context.Background(), p, "1.0.0"); err == nil {
				t.Fatal("Add succeeded, want an error")
			}
			got := eventsOf(f.recorder, "Warning")
			if len(got) != len(tt.wantMsgs) {
				t.Fatalf("Warning events = %+v, want %d", got, len(tt.wantMsgs))
			}
			for i, e := range got {
				if e.pod != webPod {
					t.Errorf("event on %+v, want %+v", e.pod, webPod)
				}
				if e.reason != ReasonAddFailed {
					t.Errorf("reason = %q, want %q", e.reason, ReasonAddFailed)
				}
				if !strings.HasPrefix(e.message, tt.wantMsgs[i]) {
					t.Errorf("message = %q, want it to start with %q", e.message, tt.wantMsgs[i])
				}
			}
		})
	}
}

func TestAddFailureEventsNeedAPodAndARecorder(t *testing.T) {
	for _, tt := range unrecorded() {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.invoker.fail["ADD green"] = delegateError("bridge", types.ErrInternal, "boom")
			p := testPlan("c1", "1.0.0")
			rec := f.recorder
			tt.setup(f, p)
			if _, err := f.attacher.addPlan(context.Background(), p, "1.0.0"); err == nil {
				t.Fatal("Add succeeded, want an error")
			}
			if len(rec.events) != 0 {
				t.Errorf("events = %+v, want none", rec.events)
			}
		})
	}
}

// TestAddFailureEventSurvivesDeadline: a failure caused by the verb's
// deadline is still told; the event gets its own deadline.
func TestAddFailureEventSurvivesDeadline(t *testing.T) {
	f := newFixture(t)
	f.invoker.fail["ADD blue"] = delegateError("macvlan", types.ErrInternal, "context deadline exceeded")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := f.attacher.addPlan(ctx, testPlan("c1", "1.0.0"), "1.0.0"); err == nil {
		t.Fatal("Add succeeded, want an error")
	}
	got := eventsOf(f.recorder, "Warning")
	if len(got) != 1 {
		t.Fatalf("Warning events = %+v, want 1", got)
	}
	if len(f.recorder.canceled) != 0 {
		t.Errorf("events sent with a done context: %q", f.recorder.canceled)
	}
}

func TestRefused(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		wantReason string
		wantMsg    string
	}{
		{
			name:       "missing NAD",
			err:        types.NewError(types.ErrTryAgainLater, "network-attachment-definition ns1/blue not found", ""),
			wantReason: ReasonNetworkNotReady,
			wantMsg:    "networks: network-attachment-definition ns1/blue not found",
		},
		{
			name:       "bad annotation",
			err:        types.NewError(types.ErrInvalidNetworkConfig, "pod ns1/web: k8s.v1.cni.cncf.io/networks", "invalid character '}'"),
			wantReason: ReasonInvalidNetworks,
			wantMsg:    "networks: pod ns1/web: k8s.v1.cni.cncf.io/networks: invalid character '}'",
		},
		{
			name:       "not a CNI error",
			err:        fmt.Errorf("wrapped: %w", errors.New("plain")),
			wantReason: ReasonInvalidNetworks,
			wantMsg:    "networks: wrapped: plain",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.attacher.refused(context.Background(), plan.PodRef{Namespace: "ns1", Name: "web", UID: "uid-c1"}, tt.err)
			want := []event{{webPod, "Warning", tt.wantReason, tt.wantMsg}}
			if got := eventsOf(f.recorder, "Warning"); !slices.Equal(got, want) {
				t.Errorf("events = %+v, want %+v", got, want)
			}
		})
	}
	t.Run("no recorder", func(t *testing.T) {
		f := newFixture(t)
		f.attacher.Recorder = nil
		f.attacher.refused(context.Background(), plan.PodRef{Namespace: "ns1", Name: "web"}, errors.New("x"))
		if len(f.recorder.events) != 0 {
			t.Errorf("events = %+v, want none", f.recorder.events)
		}
	})
}
