package main

import (
	"encoding/json"
	"maps"
	"os"
	"slices"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/containernetworking/plugins/pkg/testutils"
	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	"github.com/vishvananda/netlink"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// statusPod is pod name with a network-status listing networks (none: no
// annotation at all).
func statusPod(t *testing.T, name string, networks ...string) *corev1.Pod {
	t.Helper()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace}}
	if len(networks) == 0 {
		return pod
	}
	statuses := make([]nadv1.NetworkStatus, len(networks))
	for i, n := range networks {
		statuses[i] = nadv1.NetworkStatus{Name: n, Interface: "if" + n}
	}
	data, err := json.Marshal(statuses)
	if err != nil {
		t.Fatal(err)
	}
	pod.Annotations = map[string]string{nadv1.NetworkStatusAnnot: string(data)}
	return pod
}

func TestHotplugged(t *testing.T) {
	first, second := namespace+"/"+nadName(1), secondNetwork()
	tests := []struct {
		name     string
		networks []string
		attached bool
		want     bool
	}{
		{"attached, both listed", []string{"cluster", first, second}, true, true},
		{"attached, second missing", []string{"cluster", first}, true, false},
		{"detached, second gone", []string{"cluster", first}, false, true},
		{"detached, second still listed", []string{"cluster", first, second}, false, false},
		{"first missing", []string{"cluster", second}, true, false},
		{"first missing, detached", []string{"cluster"}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			statuses := make([]nadv1.NetworkStatus, len(tt.networks))
			for i, n := range tt.networks {
				statuses[i].Name = n
			}
			if got := hotplugged(tt.attached)(statuses); got != tt.want {
				t.Errorf("hotplugged(%v)(%v) = %v, want %v", tt.attached, tt.networks, got, tt.want)
			}
		})
	}
}

// TestStatusWatchObserve: a waiter gets the first status of its pod that
// it wants, once; other pods, pods without a status and unwanted statuses
// are passed over; a replaced waiter gets nothing.
func TestStatusWatchObserve(t *testing.T) {
	w := &statusWatch{waiters: map[string]*waiter{}}
	second := secondNetwork()
	replaced := w.expect("p", hotplugged(true))
	seen := w.expect("p", func(s []nadv1.NetworkStatus) bool { return listed(s, second) != nil })
	w.observe(statusPod(t, "other", second))
	w.observe(statusPod(t, "p"))
	w.observe(statusPod(t, "p", "cluster"))
	w.observe("not a pod")
	select {
	case o := <-seen:
		t.Fatalf("got %v before the wanted status", o.statuses)
	default:
	}
	w.observe(statusPod(t, "p", "cluster", second))
	w.observe(statusPod(t, "p", "cluster", second, "again"))
	select {
	case o := <-seen:
		if len(o.statuses) != 2 || o.at.IsZero() {
			t.Errorf("got %v at %v, want the first wanted status (2 entries) with its time", o.statuses, o.at)
		}
	default:
		t.Fatal("wanted status not handed over")
	}
	select {
	case o := <-seen:
		t.Errorf("handed over twice: %v", o.statuses)
	case o := <-replaced:
		t.Errorf("replaced waiter got %v", o.statuses)
	default:
	}
}

// TestAddressesIn reads links and addresses inside a network namespace,
// not the host's. Root only.
func TestAddressesIn(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces)")
	}
	netns, err := testutils.NewNS()
	if err != nil {
		t.Fatal(err)
	}
	// As the rounds close their sandboxes.
	t.Cleanup(func() {
		if err := closeSandboxes([]sandbox{{netns: netns, id: "addresses-test"}}); err != nil {
			t.Error(err)
		}
	})
	err = netns.Do(func(ns.NetNS) error {
		link := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "hp0"}, PeerName: "hp1"}
		if err := netlink.LinkAdd(link); err != nil {
			return err
		}
		addr, err := netlink.ParseAddr("10.99.0.7/24")
		if err != nil {
			return err
		}
		return netlink.AddrAdd(link, addr)
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := addressesIn(netns)
	if err != nil {
		t.Fatal(err)
	}
	if names := slices.Sorted(maps.Keys(got)); !slices.Equal(names, []string{"hp0", "hp1", "lo"}) {
		t.Errorf("links %v, want hp0, hp1 and lo", names)
	}
	if !slices.Equal(got["hp0"], []string{"10.99.0.7"}) {
		t.Errorf("hp0 addresses %v, want 10.99.0.7", got["hp0"])
	}
}
