package gateway

import (
	"errors"
	"fmt"
	"net"
	"os"
	"reflect"
	"syscall"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/containernetworking/plugins/pkg/testutils"
	"github.com/vishvananda/netlink"
)

// podDefaults are the default routes newPod sets up, on the cluster network.
var podDefaults = []string{"IPv4 eth0 via 10.10.0.1", "IPv6 eth0 via fd00:10::1"}

func TestApplyToNetns(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces")
	}
	tests := []struct {
		name    string
		reqs    []Request
		want    []string // default routes afterwards
		wantErr []string // substrings of the error; the netns path is checked too
		wantIs  error
	}{
		{
			name: "IPv4 moves to net1",
			reqs: []Request{{Attachment: 1, IfName: "net1", GW: net.ParseIP("10.20.0.1")}},
			want: []string{"IPv4 net1 via 10.20.0.1", "IPv6 eth0 via fd00:10::1"},
		},
		{
			name: "IPv4 and IPv6 move to net1",
			reqs: []Request{
				{Attachment: 1, IfName: "net1", GW: net.ParseIP("10.20.0.1")},
				{Attachment: 1, IfName: "net1", GW: net.ParseIP("fd00:20::1")},
			},
			want: []string{"IPv4 net1 via 10.20.0.1", "IPv6 net1 via fd00:20::1"},
		},
		{
			name: "no requests",
			want: podDefaults,
		},
		{
			name:    "unreachable gateway keeps eth0",
			reqs:    []Request{{Attachment: 1, IfName: "net1", GW: net.ParseIP("192.0.2.1")}},
			want:    podDefaults,
			wantErr: []string{"net1", "192.0.2.1"},
			wantIs:  syscall.ENETUNREACH,
		},
		{
			name:    "missing interface",
			reqs:    []Request{{Attachment: 2, IfName: "net2", GW: net.ParseIP("10.20.0.1")}},
			want:    podDefaults,
			wantErr: []string{"net2", "10.20.0.1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			netnsPath := newPod(t)

			err := ApplyToNetns(netnsPath, tt.reqs)
			if tt.wantErr != nil {
				checkErr(t, err, append(tt.wantErr, netnsPath))
			} else {
				checkErr(t, err, nil)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("error %q is not %v", err, tt.wantIs)
			}

			routes, err := DefaultRoutes(netnsPath)
			if err != nil {
				t.Fatalf("DefaultRoutes: %v", err)
			}
			if got := defaultRouteStrings(routes); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("default routes = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestApplyToNetnsMissingNetns(t *testing.T) {
	path := "/var/run/netns/braid-gateway-test-missing"
	err := ApplyToNetns(path, []Request{{Attachment: 1, IfName: "net1", GW: net.ParseIP("10.20.0.1")}})
	checkErr(t, err, []string{path})
}

// newPod creates a network namespace that looks like a pod after its
// cluster attachment and one secondary attachment, and returns its path:
//
//	eth0  10.10.0.2/24 fd00:10::2/64, default routes via 10.10.0.1 and fd00:10::1
//	net1  10.20.0.2/24 fd00:20::2/64
//
// Each interface is the pod end of a veth pair made from the host
// namespace. The host ends stay down, so the pod ends have no carrier and
// the kernel marks their routes linkdown, a flag it refuses when a route is
// added back: the unreachable-gateway case checks that restoring copes.
// Everything is removed when t ends.
func newPod(t *testing.T) string {
	t.Helper()
	podNS, err := testutils.NewNS()
	if err != nil {
		t.Fatalf("create pod netns: %v", err)
	}
	t.Cleanup(func() {
		if err := podNS.Close(); err != nil {
			t.Errorf("close pod netns: %v", err)
		}
		if err := testutils.UnmountNS(podNS); err != nil {
			t.Errorf("unmount pod netns: %v", err)
		}
	})

	ifaces := []podIface{
		{name: "eth0", addrs: []string{"10.10.0.2/24", "fd00:10::2/64"}, gws: []string{"10.10.0.1", "fd00:10::1"}},
		{name: "net1", addrs: []string{"10.20.0.2/24", "fd00:20::2/64"}},
	}
	for i, iface := range ifaces {
		// The pid keeps host names apart from other test binaries running
		// at the same time.
		addVeth(t, fmt.Sprintf("gw%d-%d", os.Getpid(), i), iface.name, podNS)
	}
	err = podNS.Do(func(ns.NetNS) error {
		for _, iface := range ifaces {
			if err := iface.configure(); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("configure pod netns: %v", err)
	}
	return podNS.Path()
}

// addVeth creates a veth pair in the host namespace with its peer, podName,
// in podNS, and deletes it when t ends.
func addVeth(t *testing.T, hostName, podName string, podNS ns.NetNS) {
	t.Helper()
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: hostName},
		PeerName:      podName,
		PeerNamespace: netlink.NsFd(int(podNS.Fd())),
	}
	if err := netlink.LinkAdd(veth); err != nil {
		t.Fatalf("add veth %s/%s: %v", hostName, podName, err)
	}
	t.Cleanup(func() {
		link, err := netlink.LinkByName(hostName)
		if err != nil {
			return // gone with the pod namespace already
		}
		if err := netlink.LinkDel(link); err != nil {
			t.Errorf("delete veth %s: %v", hostName, err)
		}
	})
}

type podIface struct {
	name  string
	addrs []string
	gws   []string // default routes via these gateways
}

// configure brings the interface up with its addresses and default routes;
// it runs inside the pod namespace.
func (p podIface) configure() error {
	link, err := netlink.LinkByName(p.name)
	if err != nil {
		return err
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("set %s up: %w", p.name, err)
	}
	for _, s := range p.addrs {
		addr, err := netlink.ParseAddr(s)
		if err != nil {
			return err
		}
		// Skip duplicate address detection so the IPv6 addresses can be
		// used as route sources at once.
		addr.Flags = syscall.IFA_F_NODAD
		if err := netlink.AddrAdd(link, addr); err != nil {
			return fmt.Errorf("add %s to %s: %w", s, p.name, err)
		}
	}
	for _, gw := range p.gws {
		// No Dst: the way older plugins add a default route.
		route := &netlink.Route{LinkIndex: link.Attrs().Index, Gw: net.ParseIP(gw)}
		if err := netlink.RouteAdd(route); err != nil {
			return fmt.Errorf("add default route via %s on %s: %w", gw, p.name, err)
		}
	}
	return nil
}

func defaultRouteStrings(routes []Route) []string {
	var out []string
	for _, r := range routes {
		out = append(out, FamilyName(r.Family)+" "+r.IfName+" via "+r.GW.String())
	}
	return out
}
