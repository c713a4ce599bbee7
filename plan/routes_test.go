package plan_test

import (
	"encoding/json"
	"fmt"
	"net"
	"reflect"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/braid-cni/braid/gateway"
	"github.com/braid-cni/braid/internal/testutil"
	"github.com/braid-cni/braid/plan"
)

func TestRouteRequests(t *testing.T) {
	v4, v4b, v6 := net.ParseIP("10.1.1.1"), net.ParseIP("10.2.2.1"), net.ParseIP("fd00::1")
	attachments := func(gws ...[]net.IP) []plan.Attachment {
		atts := make([]plan.Attachment, len(gws))
		for i, list := range gws {
			atts[i] = plan.Attachment{IfName: fmt.Sprintf("net%d", i), Network: "ns/n", Config: json.RawMessage(`{}`), DefaultRoute: list}
		}
		return atts
	}
	tests := []struct {
		name        string
		p           *plan.Plan
		want        []gateway.Request
		wantDetails []string // a CNI error with code 7 whose details hold these
	}{
		{
			name: "the plan's own requests, as stored",
			// They differ from the attachments' on purpose: the stored
			// ones are what ADD applies.
			p:    &plan.Plan{Attachments: attachments(nil, []net.IP{v4}), DefaultRoutes: []gateway.Request{{Attachment: 1, IfName: "net1", GW: v4b}}},
			want: []gateway.Request{{Attachment: 1, IfName: "net1", GW: v4b}},
		},
		{
			name: "none stored: from the attachments",
			p:    &plan.Plan{Attachments: attachments(nil, []net.IP{v4}, []net.IP{v6})},
			want: []gateway.Request{{Attachment: 1, IfName: "net1", GW: v4}, {Attachment: 2, IfName: "net2", GW: v6}},
		},
		{
			name: "none asked for",
			p:    &plan.Plan{Attachments: attachments(nil, nil)},
		},
		{
			name:        "two IPv4 requests",
			p:           &plan.Plan{Attachments: attachments(nil, []net.IP{v4}, []net.IP{v4b})},
			wantDetails: []string{"IPv4", "net1", "net2"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.p.RouteRequests()
			if tt.wantDetails != nil {
				te := testutil.WantCNIError(t, err, types.ErrInvalidNetworkConfig, "default-route")
				for _, s := range tt.wantDetails {
					if !strings.Contains(te.Details, s) {
						t.Errorf("details %q do not contain %q", te.Details, s)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("RouteRequests: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("RouteRequests = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestUnmarshalWithoutDefaultRoutes: a plan journaled before plans carried
// their default-route requests still loads, for DEL and CHECK, and its
// requests come from its attachments.
func TestUnmarshalWithoutDefaultRoutes(t *testing.T) {
	const old = `{"version":1,"containerID":"c0ffee","netns":"/var/run/netns/cni-1","ifName":"eth0","pod":{"namespace":"ns","name":"p"},
		"attachments":[
			{"ifName":"eth0","network":"cluster-net","cluster":true,"config":{"type":"ptp"},"result":{"cniVersion":"1.0.0"}},
			{"ifName":"net1","network":"ns/a","config":{"type":"bridge"},"defaultRoute":["10.1.1.1"],"result":{"cniVersion":"1.0.0"}}]}`
	p, err := plan.Unmarshal([]byte(old))
	if err != nil {
		t.Fatalf("Unmarshal: %v", err)
	}
	if p.DefaultRoutes != nil || len(p.Attachments) != 2 {
		t.Fatalf("plan %+v, want two attachments and no DefaultRoutes", p)
	}
	got, err := p.RouteRequests()
	if err != nil {
		t.Fatalf("RouteRequests: %v", err)
	}
	want := []gateway.Request{{Attachment: 1, IfName: "net1", GW: net.ParseIP("10.1.1.1")}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("RouteRequests = %+v, want %+v", got, want)
	}
}

// TestMarshalDefaultRoutes pins the journal's spelling of the requests, and
// that a plan without any writes no key.
func TestMarshalDefaultRoutes(t *testing.T) {
	tests := []struct {
		name string
		reqs []gateway.Request
		want string // the defaultRoutes key and value; "" for no key
	}{
		{
			name: "IPv4 and IPv6",
			reqs: []gateway.Request{{Attachment: 1, IfName: "net1", GW: net.ParseIP("10.1.1.1")}, {Attachment: 2, IfName: "net2", GW: net.ParseIP("fd00::1")}},
			want: `"defaultRoutes":[{"attachment":1,"ifName":"net1","gw":"10.1.1.1"},{"attachment":2,"ifName":"net2","gw":"fd00::1"}]`,
		},
		{name: "none"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &plan.Plan{Version: plan.Version, ContainerID: "c", DefaultRoutes: tt.reqs}
			data, err := p.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if tt.want == "" {
				if strings.Contains(string(data), "defaultRoutes") {
					t.Errorf("plan %s has defaultRoutes, want none", data)
				}
				return
			}
			if !strings.Contains(string(data), tt.want) {
				t.Errorf("plan %s does not contain %s", data, tt.want)
			}
		})
	}
}
