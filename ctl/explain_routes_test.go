package ctl

import (
	"net"
	"reflect"
	"testing"

	"github.com/braid-cni/braid/gateway"
	"github.com/braid-cni/braid/plan"
)

// TestDefaultRouteChoices: explain says what ADD does with the plan's
// default-route requests, family by family.
func TestDefaultRouteChoices(t *testing.T) {
	atts := []plan.Attachment{
		{IfName: "eth0", Network: "cluster", Cluster: true},
		{IfName: "net1", Network: "ns/blue"},
		{IfName: "net2", Network: "ns/green"},
	}
	stand := func(family string) DefaultRouteChoice {
		return DefaultRouteChoice{Family: family, Interface: "eth0", Network: "cluster", Reason: "no default-route request: the delegates' routes stand"}
	}
	tests := []struct {
		name string
		reqs []gateway.Request
		want []DefaultRouteChoice
	}{
		{name: "no requests", want: []DefaultRouteChoice{stand("IPv4"), stand("IPv6")}},
		{
			name: "IPv6 on net2",
			reqs: []gateway.Request{{Attachment: 2, IfName: "net2", GW: net.ParseIP("fd00:2::1")}},
			want: []DefaultRouteChoice{stand("IPv4"), {Family: "IPv6", Interface: "net2", Network: "ns/green", Gateway: "fd00:2::1", Reason: "default-route request"}},
		},
		{
			name: "IPv4 on net1, IPv6 on net2",
			reqs: []gateway.Request{
				{Attachment: 2, IfName: "net2", GW: net.ParseIP("fd00:2::1")},
				{Attachment: 1, IfName: "net1", GW: net.ParseIP("10.1.1.1")},
			},
			want: []DefaultRouteChoice{
				{Family: "IPv4", Interface: "net1", Network: "ns/blue", Gateway: "10.1.1.1", Reason: "default-route request"},
				{Family: "IPv6", Interface: "net2", Network: "ns/green", Gateway: "fd00:2::1", Reason: "default-route request"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The attachments' own lists are left empty: explain reads the
			// requests Build stored, which are what ADD applies.
			p := &plan.Plan{Attachments: atts, DefaultRoutes: tt.reqs}
			if got := defaultRouteChoices(p); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("defaultRouteChoices =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}
