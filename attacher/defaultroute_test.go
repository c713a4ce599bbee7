package attacher

import (
	"context"
	"net"
	"reflect"
	"testing"

	"github.com/braid-cni/braid/gateway"
)

// TestAddDefaultRouteFromPlan: ADD applies the default-route requests the
// plan carries (Build computed them), not ones worked out again from the
// attachments' lists; a plan without them gets the attachments' lists.
func TestAddDefaultRouteFromPlan(t *testing.T) {
	net1 := gateway.Request{Attachment: 1, IfName: "net1", GW: net.ParseIP("10.1.1.1")}
	net2 := gateway.Request{Attachment: 2, IfName: "net2", GW: net.ParseIP("10.2.2.1")}
	tests := []struct {
		name        string
		lists       [][]net.IP // the attachments' default-route lists
		planned     []gateway.Request
		want        []gateway.Request
		wantDefault string // the interface network-status marks default
	}{
		{
			name:        "the plan's requests only",
			planned:     []gateway.Request{net2},
			want:        []gateway.Request{net2},
			wantDefault: "net2",
		},
		{
			// Cannot come from Build; it shows which one ADD reads.
			name:        "the plan's requests over the attachments' lists",
			lists:       [][]net.IP{nil, {net1.GW}, nil},
			planned:     []gateway.Request{net2},
			want:        []gateway.Request{net2},
			wantDefault: "net2",
		},
		{
			name:        "no planned requests: the attachments' lists",
			lists:       [][]net.IP{nil, {net1.GW}, nil},
			want:        []gateway.Request{net1},
			wantDefault: "net1",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			p := testPlan("c1", "1.0.0")
			for i, list := range tt.lists {
				p.Attachments[i].DefaultRoute = list
			}
			p.DefaultRoutes = tt.planned
			if _, err := f.attacher.addPlan(context.Background(), p, "1.0.0"); err != nil {
				t.Fatalf("Add: %v", err)
			}
			wantCalls := []routeCall{{netns: p.NetNS, reqs: tt.want}}
			if !reflect.DeepEqual(f.routes.calls, wantCalls) {
				t.Errorf("Routes calls = %+v, want %+v", f.routes.calls, wantCalls)
			}
			if len(f.recorder.records) != 1 {
				t.Fatalf("Record called %d times, want 1", len(f.recorder.records))
			}
			var defaults []string
			for _, s := range f.recorder.records[0].statuses {
				if s.Default {
					defaults = append(defaults, s.Interface)
				}
			}
			if want := []string{tt.wantDefault}; !reflect.DeepEqual(defaults, want) {
				t.Errorf("network-status default on %q, want %q", defaults, want)
			}
			// The journal keeps the plan's requests as they were.
			if got := f.journaled(t, "c1").DefaultRoutes; !reflect.DeepEqual(got, tt.planned) {
				t.Errorf("journaled DefaultRoutes = %+v, want %+v", got, tt.planned)
			}
		})
	}
}
