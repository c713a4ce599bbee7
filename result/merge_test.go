package result

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"reflect"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	types020 "github.com/containernetworking/cni/pkg/types/020"
	types040 "github.com/containernetworking/cni/pkg/types/040"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/types/create"

	"github.com/braid-cni/braid/internal/testutil"
)

const podNetns = "/var/run/netns/pod"

// clusterResult is what a ptp-like cluster plugin returns: the host veth
// first, then eth0 holding both addresses.
func clusterResult() *current.Result {
	return &current.Result{
		CNIVersion: "1.1.0",
		Interfaces: []*current.Interface{
			{Name: "veth0a1b2c3d", Mac: "0a:00:00:00:00:01"},
			{Name: "eth0", Mac: "0a:00:00:00:00:02", Sandbox: podNetns},
		},
		IPs: []*current.IPConfig{
			{Interface: current.Int(1), Address: cidr("10.244.1.5/24"), Gateway: net.ParseIP("10.244.1.1")},
			{Interface: current.Int(1), Address: cidr("fd00:244::5/64"), Gateway: net.ParseIP("fd00:244::1")},
		},
		Routes: []*types.Route{
			{Dst: cidr("0.0.0.0/0"), GW: net.ParseIP("10.244.1.1")},
			{Dst: cidr("::/0"), GW: net.ParseIP("fd00:244::1")},
			{Dst: cidr("10.96.0.0/12"), GW: net.ParseIP("10.244.1.1")},
		},
		DNS: types.DNS{
			Nameservers: []string{"10.96.0.10"},
			Domain:      "cluster.local",
			Search:      []string{"default.svc.cluster.local", "svc.cluster.local"},
		},
	}
}

// macvlanResult is a secondary network with its own sandbox interface.
func macvlanResult() *current.Result {
	return &current.Result{
		CNIVersion: "1.1.0",
		Interfaces: []*current.Interface{{Name: "net1", Mac: "0a:00:00:00:01:01", Sandbox: podNetns}},
		IPs: []*current.IPConfig{
			{Interface: current.Int(0), Address: cidr("10.1.1.5/24"), Gateway: net.ParseIP("10.1.1.1")},
		},
		Routes: []*types.Route{{Dst: cidr("10.1.0.0/16"), GW: net.ParseIP("10.1.1.1")}},
	}
}

// noIndexResult is a secondary network whose address names no interface;
// its DNS must not reach the merged result.
func noIndexResult() *current.Result {
	return &current.Result{
		CNIVersion: "1.1.0",
		Interfaces: []*current.Interface{{Name: "net2", Sandbox: podNetns}},
		IPs:        []*current.IPConfig{{Address: cidr("192.168.50.5/24")}},
		DNS:        types.DNS{Nameservers: []string{"192.168.50.53"}},
	}
}

func TestMerge(t *testing.T) {
	for _, version := range []string{"0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"} {
		t.Run(version, func(t *testing.T) {
			var parts []types.Result
			for _, r := range []*current.Result{clusterResult(), macvlanResult(), noIndexResult()} {
				part, err := r.GetAsVersion(version)
				if err != nil {
					t.Fatalf("convert part to %s: %v", version, err)
				}
				parts = append(parts, part)
			}
			before := testutil.JSON(t, parts)

			merged, err := Merge(version, parts)
			if err != nil {
				t.Fatalf("Merge: %v", err)
			}
			if merged.Version() != version {
				t.Errorf("Version() = %q, want %q", merged.Version(), version)
			}
			got := decode(t, merged, version)

			wantIfaces := []string{"veth0a1b2c3d", "eth0 in " + podNetns, "net1 in " + podNetns, "net2 in " + podNetns}
			if s := ifaceStrings(got); !reflect.DeepEqual(s, wantIfaces) {
				t.Errorf("interfaces = %q, want %q", s, wantIfaces)
			}
			wantIPs := []string{"10.244.1.5/24 on 1", "fd00:244::5/64 on 1", "10.1.1.5/24 on 2", "192.168.50.5/24 on none"}
			if s := ipStrings(got); !reflect.DeepEqual(s, wantIPs) {
				t.Errorf("ips = %q, want %q", s, wantIPs)
			}
			wantRoutes := []string{"0.0.0.0/0 via 10.244.1.1", "::/0 via fd00:244::1", "10.96.0.0/12 via 10.244.1.1", "10.1.0.0/16 via 10.1.1.1"}
			if s := routeStrings(got); !reflect.DeepEqual(s, wantRoutes) {
				t.Errorf("routes = %q, want %q", s, wantRoutes)
			}
			if want := clusterResult().DNS; !reflect.DeepEqual(got.DNS, want) {
				t.Errorf("dns = %+v, want %+v", got.DNS, want)
			}
			if after := testutil.JSON(t, parts); after != before {
				t.Errorf("Merge changed its input:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
}

func TestMergeMixedVersions(t *testing.T) {
	tests := []struct {
		name    string
		version string
		parts   []types.Result
		wantIPs []string
	}{
		{
			name:    "0.3.1 secondary after 1.1.0 cluster",
			version: "1.0.0",
			parts:   []types.Result{clusterResult(), result040("0.3.1", "net1", "10.1.1.5/24")},
			wantIPs: []string{"10.244.1.5/24 on 1", "fd00:244::5/64 on 1", "10.1.1.5/24 on 2"},
		},
		{
			name:    "0.4.0 cluster before 1.0.0 secondary",
			version: "0.4.0",
			parts:   []types.Result{result040("0.4.0", "eth0", "10.244.1.5/24"), mustVersion(macvlanResult(), "1.0.0")},
			wantIPs: []string{"10.244.1.5/24 on 0", "10.1.1.5/24 on 1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			merged, err := Merge(tt.version, tt.parts)
			if err != nil {
				t.Fatalf("Merge: %v", err)
			}
			got := decode(t, merged, tt.version)
			if s := ipStrings(got); !reflect.DeepEqual(s, tt.wantIPs) {
				t.Errorf("ips = %q, want %q", s, tt.wantIPs)
			}
		})
	}
}

func TestMergeErrors(t *testing.T) {
	tests := []struct {
		name    string
		version string
		parts   []types.Result
		wantErr string
		wrapped bool // the error wraps one from the cni library
	}{
		{name: "0.2.0 has no interfaces", version: "0.2.0", parts: []types.Result{clusterResult()}, wantErr: `cniVersion "0.2.0"`},
		{name: "empty version", version: "", parts: []types.Result{clusterResult()}, wantErr: `cniVersion ""`},
		{name: "unknown version", version: "1.2.0", parts: []types.Result{clusterResult()}, wantErr: `cniVersion "1.2.0"`},
		{name: "nil part", version: "1.1.0", parts: []types.Result{clusterResult(), nil}, wantErr: "part 1 is nil"},
		{
			name:    "part of unknown version",
			version: "1.1.0",
			parts:   []types.Result{clusterResult(), macvlanResult(), &current.Result{CNIVersion: "0.9.9"}},
			wantErr: `convert part 2 (version "0.9.9")`,
			wrapped: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			merged, err := Merge(tt.version, tt.parts)
			if err == nil {
				t.Fatalf("Merge = %v, want an error containing %q", merged, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not contain %q", err, tt.wantErr)
			}
			if tt.wrapped && errors.Unwrap(err) == nil {
				t.Errorf("error %q wraps nothing", err)
			}
		})
	}
}

// TestGetAsVersion020DropsInterfaces pins down why Merge refuses 0.2.0 itself:
// the library converts to 0.2.0 without complaint as long as there is an
// address, keeping one IPv4 and one IPv6 address and losing every interface.
func TestGetAsVersion020DropsInterfaces(t *testing.T) {
	merged, err := Merge("1.1.0", []types.Result{clusterResult(), macvlanResult()})
	if err != nil {
		t.Fatalf("Merge: %v", err)
	}
	old, err := merged.GetAsVersion("0.2.0")
	if err != nil {
		t.Fatalf("GetAsVersion(0.2.0): %v", err)
	}
	r, ok := old.(*types020.Result)
	if !ok {
		t.Fatalf("GetAsVersion(0.2.0) = %T, want *types020.Result", old)
	}
	if r.IP4 == nil || r.IP4.IP.String() != "10.244.1.5/24" {
		t.Errorf("ip4 = %+v, want only the cluster address 10.244.1.5/24", r.IP4)
	}
	if strings.Contains(testutil.JSON(t, r), "10.1.1.5") {
		t.Errorf("0.2.0 result %s still holds the secondary address", testutil.JSON(t, r))
	}
}

func result040(version, ifName, addr string) *types040.Result {
	return &types040.Result{
		CNIVersion: version,
		Interfaces: []*types040.Interface{{Name: ifName, Sandbox: podNetns}},
		IPs:        []*types040.IPConfig{{Version: "4", Interface: types040.Int(0), Address: cidr(addr)}},
	}
}

func mustVersion(r *current.Result, version string) types.Result {
	out, err := r.GetAsVersion(version)
	if err != nil {
		panic(fmt.Sprintf("convert to %s: %v", version, err))
	}
	return out
}

// decode prints r, reads it back as the runtime would and checks its
// version, then returns it converted to the current types for inspection.
func decode(t *testing.T, r types.Result, version string) *current.Result {
	t.Helper()
	var buf bytes.Buffer
	if err := r.PrintTo(&buf); err != nil {
		t.Fatalf("print result: %v", err)
	}
	read, err := create.CreateFromBytes(buf.Bytes())
	if err != nil {
		t.Fatalf("decode %s: %v", buf.String(), err)
	}
	if read.Version() != version {
		t.Errorf("decoded cniVersion = %q, want %q", read.Version(), version)
	}
	got, err := current.NewResultFromResult(read)
	if err != nil {
		t.Fatalf("convert decoded result: %v", err)
	}
	return got
}

func ifaceStrings(r *current.Result) []string {
	var out []string
	for _, iface := range r.Interfaces {
		s := iface.Name
		if iface.Sandbox != "" {
			s += " in " + iface.Sandbox
		}
		out = append(out, s)
	}
	return out
}

func ipStrings(r *current.Result) []string {
	var out []string
	for _, ip := range r.IPs {
		index := "none"
		if ip.Interface != nil {
			index = fmt.Sprint(*ip.Interface)
		}
		out = append(out, ip.Address.String()+" on "+index)
	}
	return out
}

func routeStrings(r *current.Result) []string {
	var out []string
	for _, route := range r.Routes {
		out = append(out, route.Dst.String()+" via "+route.GW.String())
	}
	return out
}

func cidr(s string) net.IPNet {
	n, err := types.ParseCIDR(s)
	if err != nil {
		panic(err)
	}
	return *n
}
