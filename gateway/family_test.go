package gateway

import (
	"net"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
)

func TestFamily(t *testing.T) {
	tests := []struct {
		name string
		ip   net.IP
		want int
	}{
		{name: "IPv4 parsed", ip: net.ParseIP("10.1.1.1"), want: IPv4},
		{name: "IPv4 in 4 bytes", ip: net.IP{10, 1, 1, 1}, want: IPv4},
		{name: "IPv4-mapped", ip: net.ParseIP("::ffff:10.1.1.1"), want: IPv4},
		{name: "IPv6", ip: net.ParseIP("fd00::1"), want: IPv6},
		{name: "IPv6 unspecified", ip: net.IPv6unspecified, want: IPv6},
		{name: "nil", ip: nil, want: 0},
		{name: "3 bytes", ip: net.IP{10, 1, 1}, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Family(tt.ip); got != tt.want {
				t.Errorf("Family(%v) = %d, want %d", tt.ip, got, tt.want)
			}
		})
	}
}

func TestRouteFamily(t *testing.T) {
	tests := []struct {
		name  string
		route *types.Route
		want  int
	}{
		{name: "IPv4 destination", route: route("10.0.0.0/8", ""), want: IPv4},
		{name: "IPv6 destination", route: route("::/0", ""), want: IPv6},
		{name: "destination wins over gateway", route: route("::/0", "10.0.0.1"), want: IPv6},
		{name: "no destination, IPv4 gateway", route: &types.Route{GW: net.ParseIP("10.0.0.1")}, want: IPv4},
		{name: "no destination, IPv6 gateway", route: &types.Route{GW: net.ParseIP("fd00::1")}, want: IPv6},
		// Neither says: the route belongs to no family (status used to
		// take it for IPv4, the attacher for IPv6).
		{name: "neither", route: &types.Route{}, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := RouteFamily(tt.route); got != tt.want {
				t.Errorf("RouteFamily(%+v) = %d, want %d", tt.route, got, tt.want)
			}
		})
	}
}

func TestFamilyName(t *testing.T) {
	tests := []struct {
		f    int
		want string
	}{
		{f: IPv4, want: "IPv4"},
		{f: IPv6, want: "IPv6"},
		{f: 0, want: "unknown family"},
	}
	for _, tt := range tests {
		if got := FamilyName(tt.f); got != tt.want {
			t.Errorf("FamilyName(%d) = %q, want %q", tt.f, got, tt.want)
		}
	}
}
