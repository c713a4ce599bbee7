package gateway

import (
	"net"
	"reflect"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
)

func TestIsDefault(t *testing.T) {
	tests := []struct {
		name string
		dst  *net.IPNet
		want bool
	}{
		{name: "nil", dst: nil, want: true},
		{name: "zero IPNet", dst: &net.IPNet{}, want: true},
		{name: "0.0.0.0/0", dst: ipNet("0.0.0.0/0"), want: true},
		{name: "::/0", dst: ipNet("::/0"), want: true},
		{name: "10.0.0.0/8", dst: ipNet("10.0.0.0/8"), want: false},
		{name: "0.0.0.0/1", dst: ipNet("0.0.0.0/1"), want: false},
		{name: "::/1", dst: ipNet("::/1"), want: false},
		{name: "0.0.0.0/32", dst: ipNet("0.0.0.0/32"), want: false},
		// Half-set destinations, which no JSON decoding gives: a /0 mask
		// alone does not say which family's default it is, and an
		// all-zero address without a mask is no prefix (status used to
		// take both for default routes).
		{name: "/0 mask without an address", dst: &net.IPNet{Mask: net.CIDRMask(0, 32)}, want: false},
		{name: "0.0.0.0 without a mask", dst: &net.IPNet{IP: net.IPv4zero}, want: false},
		{name: "0.0.0.0 with a non-canonical mask", dst: &net.IPNet{IP: net.IPv4zero, Mask: net.IPv4Mask(0, 255, 0, 0)}, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsDefault(tt.dst); got != tt.want {
				t.Errorf("IsDefault(%v) = %v, want %v", tt.dst, got, tt.want)
			}
		})
	}
}

func TestRequests(t *testing.T) {
	v4, v4b, v6 := net.ParseIP("10.1.1.1"), net.ParseIP("10.2.2.1"), net.ParseIP("fd00:1::1")
	tests := []struct {
		name    string
		ifNames []string
		gws     [][]net.IP
		want    []Request
		wantErr []string // substrings of the error
	}{
		{
			name:    "IPv4 and IPv6 on different attachments",
			ifNames: []string{"eth0", "net1", "net2"},
			gws:     [][]net.IP{nil, {v4}, {v6}},
			want:    []Request{{Attachment: 1, IfName: "net1", GW: v4}, {Attachment: 2, IfName: "net2", GW: v6}},
		},
		{
			name:    "IPv4 and IPv6 on one attachment",
			ifNames: []string{"eth0", "net1"},
			gws:     [][]net.IP{nil, {v4, v6}},
			want:    []Request{{Attachment: 1, IfName: "net1", GW: v4}, {Attachment: 1, IfName: "net1", GW: v6}},
		},
		{
			name:    "two IPv4",
			ifNames: []string{"eth0", "net1", "net2"},
			gws:     [][]net.IP{nil, {v4}, {v4b}},
			wantErr: []string{"IPv4", "net1", "net2"},
		},
		{name: "empty lists", ifNames: []string{"eth0", "net1"}, gws: [][]net.IP{nil, {}}},
		{name: "no attachments"},
		{
			name:    "not an address",
			ifNames: []string{"net1"},
			gws:     [][]net.IP{{net.IP{10, 1, 1}}},
			wantErr: []string{"net1", "not an IP address"},
		},
		{
			name:    "lengths differ",
			ifNames: []string{"eth0"},
			gws:     [][]net.IP{nil, {v4}},
			wantErr: []string{"1 interface names for 2 gateway lists"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Requests(tt.ifNames, tt.gws)
			checkErr(t, err, tt.wantErr)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Requests = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestVia(t *testing.T) {
	ips := []*current.IPConfig{
		{Address: *ipNet("10.1.0.5/24")}, // no gateway
		{Address: *ipNet("10.1.1.5/24"), Gateway: net.ParseIP("10.1.1.1")},
		{Address: *ipNet("10.2.1.5/24"), Gateway: net.ParseIP("10.2.1.1")},
		{Address: *ipNet("fd00:1::5/64"), Gateway: net.ParseIP("fd00:1::1")},
	}
	tests := []struct {
		name  string
		route *types.Route
		ips   []*current.IPConfig
		want  net.IP
	}{
		{name: "own gateway", route: route("0.0.0.0/0", "10.9.9.1"), ips: ips, want: net.ParseIP("10.9.9.1")},
		{name: "IPv4 without gw: first IPv4 IP gateway", route: route("0.0.0.0/0", ""), ips: ips, want: net.ParseIP("10.1.1.1")},
		{name: "IPv6 without gw: IPv6 IP gateway", route: route("::/0", ""), ips: ips, want: net.ParseIP("fd00:1::1")},
		{name: "no IP gateway of the family", route: route("::/0", ""), ips: ips[:3], want: nil},
		{name: "no IPs", route: route("0.0.0.0/0", ""), want: nil},
		{name: "nil IP config skipped", route: route("0.0.0.0/0", ""), ips: []*current.IPConfig{nil, ips[1]}, want: net.ParseIP("10.1.1.1")},
		// Neither dst nor gw: no family, so no IP's gateway is its.
		{name: "route of no family", route: &types.Route{}, ips: ips, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Via(tt.route, tt.ips); !got.Equal(tt.want) || (got == nil) != (tt.want == nil) {
				t.Errorf("Via = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestHolder(t *testing.T) {
	result := func(routes ...*types.Route) *current.Result { return &current.Result{Routes: routes} }
	tests := []struct {
		name    string
		results []*current.Result
		want    int
	}{
		{
			name:    "IPv4 default on the cluster network, IPv6 on net1",
			results: []*current.Result{result(route("0.0.0.0/0", "10.244.0.1")), result(route("::/0", "fd00:1::1"))},
			want:    0,
		},
		{
			name:    "IPv4 default on net1",
			results: []*current.Result{result(route("10.96.0.0/12", "10.244.0.1")), result(route("0.0.0.0/0", "10.1.1.1"))},
			want:    1,
		},
		{
			name: "IPv4 wins over an earlier IPv6",
			results: []*current.Result{
				result(route("::/0", "fd00::1")), result(), result(route("0.0.0.0/0", "10.2.2.1")),
			},
			want: 2,
		},
		{
			name:    "IPv6 only",
			results: []*current.Result{result(), result(route("::/0", "fd00:1::1"))},
			want:    1,
		},
		{
			name:    "default without dst, by its IPv4 gateway",
			results: []*current.Result{result(route("::/0", "fd00::1")), result(&types.Route{GW: net.ParseIP("10.1.1.1")})},
			want:    1,
		},
		{
			// Neither dst nor gw: of no family, so it holds nothing (the
			// attacher used to count it as IPv6).
			name:    "default of no family is skipped",
			results: []*current.Result{result(), result(&types.Route{}), result(route("::/0", "fd00:2::1"))},
			want:    2,
		},
		{
			name:    "nil result and nil route skipped",
			results: []*current.Result{result(), nil, result(nil, route("0.0.0.0/0", "10.3.3.1"))},
			want:    2,
		},
		{
			name:    "no default route: the cluster network",
			results: []*current.Result{result(route("10.96.0.0/12", "10.244.0.1")), result()},
			want:    0,
		},
		{name: "no results", want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Holder(tt.results); got != tt.want {
				t.Errorf("Holder = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestApplyToResults(t *testing.T) {
	cluster := func() *current.Result {
		return &current.Result{Routes: []*types.Route{
			route("0.0.0.0/0", "10.244.1.1"),
			route("::/0", "fd00:244::1"),
			route("10.96.0.0/12", "10.244.1.1"),
		}}
	}
	secondary := func(routes ...*types.Route) *current.Result {
		return &current.Result{Routes: routes}
	}
	tests := []struct {
		name    string
		results []*current.Result
		reqs    []Request
		want    [][]string // routes of each result; nil for a nil result
		wantErr []string
	}{
		{
			name:    "IPv4 moves, IPv6 stays",
			results: []*current.Result{cluster(), secondary(route("10.1.0.0/16", "10.1.1.1"))},
			reqs:    []Request{{Attachment: 1, IfName: "net1", GW: net.ParseIP("10.1.1.1")}},
			want: [][]string{
				{"::/0 via fd00:244::1", "10.96.0.0/12 via 10.244.1.1"},
				{"10.1.0.0/16 via 10.1.1.1", "0.0.0.0/0 via 10.1.1.1"},
			},
		},
		{
			name:    "IPv6 moves, IPv4 stays",
			results: []*current.Result{cluster(), secondary()},
			reqs:    []Request{{Attachment: 1, IfName: "net1", GW: net.ParseIP("fd00:1::1")}},
			want: [][]string{
				{"0.0.0.0/0 via 10.244.1.1", "10.96.0.0/12 via 10.244.1.1"},
				{"::/0 via fd00:1::1"},
			},
		},
		{
			name: "routes without dst and the target's own default are removed",
			results: []*current.Result{
				secondary(&types.Route{GW: net.ParseIP("10.244.1.1")}, route("10.96.0.0/12", "10.244.1.1")),
				secondary(route("0.0.0.0/0", "10.1.1.254"), &types.Route{GW: net.ParseIP("fd00:1::1")}),
			},
			reqs: []Request{{Attachment: 1, IfName: "net1", GW: net.ParseIP("10.1.1.1")}},
			want: [][]string{
				{"10.96.0.0/12 via 10.244.1.1"},
				{"<nil> via fd00:1::1", "0.0.0.0/0 via 10.1.1.1"},
			},
		},
		{
			name:    "nil result away from the request",
			results: []*current.Result{cluster(), nil, secondary()},
			reqs:    []Request{{Attachment: 2, IfName: "net2", GW: net.ParseIP("10.2.2.1")}},
			want: [][]string{
				{"::/0 via fd00:244::1", "10.96.0.0/12 via 10.244.1.1"},
				nil,
				{"0.0.0.0/0 via 10.2.2.1"},
			},
		},
		{
			name:    "no requests",
			results: []*current.Result{cluster(), nil},
			want:    [][]string{routeStrings(cluster()), nil},
		},
		{
			name:    "nil result at the request",
			results: []*current.Result{cluster(), nil},
			reqs:    []Request{{Attachment: 1, IfName: "net1", GW: net.ParseIP("10.1.1.1")}},
			want:    [][]string{routeStrings(cluster()), nil},
			wantErr: []string{"net1", "attachment 1"},
		},
		{
			name:    "request past the results",
			results: []*current.Result{cluster()},
			reqs:    []Request{{Attachment: 1, IfName: "net1", GW: net.ParseIP("10.1.1.1")}},
			want:    [][]string{routeStrings(cluster())},
			wantErr: []string{"net1", "attachment 1"},
		},
		{
			name:    "two IPv4 requests",
			results: []*current.Result{cluster(), secondary(), secondary()},
			reqs: []Request{
				{Attachment: 1, IfName: "net1", GW: net.ParseIP("10.1.1.1")},
				{Attachment: 2, IfName: "net2", GW: net.ParseIP("10.2.2.1")},
			},
			want:    [][]string{routeStrings(cluster()), nil, nil},
			wantErr: []string{"net1", "net2"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ApplyToResults(tt.results, tt.reqs)
			checkErr(t, err, tt.wantErr)
			for i, r := range tt.results {
				var got []string
				if r != nil {
					got = routeStrings(r)
				}
				if !reflect.DeepEqual(got, tt.want[i]) {
					t.Errorf("result %d routes = %q, want %q", i, got, tt.want[i])
				}
			}
		})
	}
}

// checkErr fails t unless err contains every one of want, or is nil when
// want is empty.
func checkErr(t *testing.T, err error, want []string) {
	t.Helper()
	if len(want) == 0 {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("no error, want one containing %q", want)
	}
	for _, s := range want {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not contain %q", err, s)
		}
	}
}

func routeStrings(r *current.Result) []string {
	var out []string
	for _, route := range r.Routes {
		out = append(out, route.Dst.String()+" via "+route.GW.String())
	}
	return out
}

func route(dst, gw string) *types.Route {
	return &types.Route{Dst: *ipNet(dst), GW: net.ParseIP(gw)}
}

func ipNet(s string) *net.IPNet {
	_, n, err := net.ParseCIDR(s)
	if err != nil {
		panic(err)
	}
	return n
}
