package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	current "github.com/containernetworking/cni/pkg/types/100"
	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/braid-cni/braid/internal/testutil"
)

// TestAttach is the main scenario at every CNI version: a pod with two
// secondary networks in the short form, a conflist NAD and a NAD whose config
// lives in confDir; ADD, the interfaces, the merged result, network-status,
// CHECK, DEL and the IP leases.
func TestAttach(t *testing.T) {
	inModes(t, func(t *testing.T, mode string) {
		for _, v := range testutil.SpecVersions() {
			t.Run(v, func(t *testing.T) {
				n := newNode(t, mode, v)
				n.createNAD(n.namespace, "blue", n.bridgeNet("blue", 1, false))
				green := map[string]any{
					"cniVersion": v,
					"name":       "green",
					"plugins": []any{
						n.bridgeNet("green", 2, false),
						map[string]any{"type": "tuning", "sysctl": map[string]any{"net.ipv4.conf.IFNAME.arp_notify": "1"}},
					},
				}
				delete(green["plugins"].([]any)[0].(map[string]any), "cniVersion")
				delete(green["plugins"].([]any)[0].(map[string]any), "name")
				n.createNAD(n.namespace, "green", green)
				// The confDir network stays at 0.3.1 whatever braid's version:
				// delegates of mixed versions merge into one result.
				filenet := n.bridgeNet("filenet", 3, false)
				filenet["cniVersion"] = "0.3.1"
				writeJSON(t, n.confDir+"/filenet.conf", filenet)
				n.createNAD(n.namespace, "filenet", nil)

				pod := n.createPod("multi", map[string]string{nadv1.NetworkAttachmentAnnot: "blue, green@green0, " + n.namespace + "/filenet"})
				sb := n.sandbox(pod)
				res := sb.mustAdd()

				links := sb.links()
				for _, want := range []string{"eth0", "net1", "green0", "net3"} {
					if _, ok := links[want]; !ok {
						t.Errorf("interface %s missing in the pod; have %v", want, keys(links))
					}
				}
				if len(links) != 4 {
					t.Errorf("pod has %d interfaces, want 4: %v", len(links), keys(links))
				}
				checkMergedResult(t, res, v, []string{"eth0", "net1", "green0", "net3"}, n.subnet(0))
				statuses := networkStatus(t, n.getPod("multi"))
				wantNames := []string{"cluster", n.namespace + "/blue", n.namespace + "/green", n.namespace + "/filenet"}
				checkStatus(t, sb, statuses, wantNames, []string{"eth0", "net1", "green0", "net3"})
				if !statuses[0].Default || statuses[1].Default {
					t.Errorf("default flags = %v,%v; want the cluster network only", statuses[0].Default, statuses[1].Default)
				}
				wantGW := fmt.Sprintf("10.200.%d.1", n.id)
				if !slices.Equal(statuses[0].Gateway, []string{wantGW}) || len(statuses[1].Gateway) != 0 {
					t.Errorf("gateways = %v / %v, want [%s] on the cluster network only", statuses[0].Gateway, statuses[1].Gateway, wantGW)
				}
				checkEvents(t, n, "multi", []string{"eth0", "net1", "green0", "net3"})
				if got := n.journal(); !slices.Equal(got, []string{sb.containerID}) {
					t.Errorf("journal = %v, want [%s]", got, sb.containerID)
				}
				if v != "0.3.1" {
					if err := sb.check(); err != nil {
						t.Errorf("CHECK: %v", err)
					}
				}

				sb.mustDel()
				if got := sb.links(); len(got) != 0 {
					t.Errorf("after DEL the pod still has %v", keys(got))
				}
				for _, net := range []string{"cluster", "blue", "green", "filenet"} {
					if l := n.leases(net); len(l) != 0 {
						t.Errorf("after DEL network %s still leases %v", net, l)
					}
				}
				if got := n.journal(); len(got) != 0 {
					t.Errorf("after DEL the journal still holds %v", got)
				}
				sb.mustDel() // DEL is idempotent
			})
		}
	})
}

// TestJSONForm: static IP, MAC, explicit interface names and cni-args through
// the JSON annotation, onto a macvlan network whose master is a host veth.
func TestJSONForm(t *testing.T) {
	inModes(t, func(t *testing.T, mode string) {
		for _, v := range testutil.SpecVersions() {
			t.Run(v, func(t *testing.T) {
				n := newNode(t, mode, v)
				master := n.hostVeth()
				n.createNAD(n.namespace, "mv", n.macvlanStatic("mv", master))
				n.createNAD(n.namespace, "blue", n.bridgeNet("blue", 1, false))
				ann := fmt.Sprintf(`[
				{"name": "mv", "interface": "data0", "ips": ["192.168.%d.10/24"], "mac": "02:00:00:00:%02x:01"},
				{"name": "blue", "namespace": %q, "interface": "blue0", "cni-args": {"note": "x"}}
			]`, n.id, n.id, n.namespace)
				pod := n.createPod("json", map[string]string{nadv1.NetworkAttachmentAnnot: ann})
				sb := n.sandbox(pod)
				res := sb.mustAdd()

				if got, want := sb.addrs("data0"), []string{fmt.Sprintf("192.168.%d.10/24", n.id)}; !slices.Equal(got, want) {
					t.Errorf("data0 addresses = %v, want %v", got, want)
				}
				wantMAC := fmt.Sprintf("02:00:00:00:%02x:01", n.id)
				if got := sb.links()["data0"].Attrs().HardwareAddr.String(); got != wantMAC {
					t.Errorf("data0 MAC = %s, want %s", got, wantMAC)
				}
				if _, ok := sb.links()["blue0"]; !ok {
					t.Errorf("blue0 missing: %v", keys(sb.links()))
				}
				checkMergedResult(t, res, v, []string{"eth0", "data0", "blue0"}, n.subnet(0))
				statuses := networkStatus(t, n.getPod("json"))
				checkStatus(t, sb, statuses, []string{"cluster", n.namespace + "/mv", n.namespace + "/blue"}, []string{"eth0", "data0", "blue0"})
				if statuses[1].Mac != wantMAC {
					t.Errorf("network-status MAC of data0 = %q, want %q", statuses[1].Mac, wantMAC)
				}
				sb.mustDel()
				if got := sb.links(); len(got) != 0 {
					t.Errorf("after DEL the pod still has %v", keys(got))
				}
			})
		}
	})
}

// checkMergedResult: every interface of every delegate in the pod, the
// cluster network's IP first, every IP's interface index pointing at an
// interface of the right name.
func checkMergedResult(t *testing.T, res *current.Result, version string, podIfs []string, clusterSubnet string) {
	t.Helper()
	var sandboxIfs []string
	for _, iface := range res.Interfaces {
		if iface.Sandbox != "" {
			sandboxIfs = append(sandboxIfs, iface.Name)
		}
	}
	if !slices.Equal(sandboxIfs, podIfs) {
		t.Errorf("result sandbox interfaces = %v, want %v", sandboxIfs, podIfs)
	}
	if len(res.IPs) < len(podIfs) {
		t.Fatalf("result has %d IPs, want at least %d", len(res.IPs), len(podIfs))
	}
	_, cluster, _ := net.ParseCIDR(clusterSubnet)
	if !cluster.Contains(res.IPs[0].Address.IP) {
		t.Errorf("first IP %s is not the cluster network's (%s)", res.IPs[0].Address.IP, clusterSubnet)
	}
	seen := map[string]bool{}
	for _, ip := range res.IPs {
		if ip.Interface == nil || *ip.Interface >= len(res.Interfaces) {
			t.Errorf("IP %s has interface index %v of %d interfaces", ip.Address.String(), ip.Interface, len(res.Interfaces))
			continue
		}
		seen[res.Interfaces[*ip.Interface].Name] = true
	}
	for _, name := range podIfs {
		if !seen[name] {
			t.Errorf("no IP in the result points at %s", name)
		}
	}
	_ = version
}

func networkStatus(t *testing.T, pod interface{ GetAnnotations() map[string]string }) []nadv1.NetworkStatus {
	t.Helper()
	raw, ok := pod.GetAnnotations()[nadv1.NetworkStatusAnnot]
	if !ok {
		t.Fatalf("no %s annotation", nadv1.NetworkStatusAnnot)
	}
	var out []nadv1.NetworkStatus
	if err := json.Unmarshal([]byte(raw), &out); err != nil {
		t.Fatalf("network-status %q: %v", raw, err)
	}
	return out
}

// checkStatus compares network-status with what the pod's netns holds.
func checkStatus(t *testing.T, sb *sandbox, statuses []nadv1.NetworkStatus, names, ifs []string) {
	t.Helper()
	if len(statuses) != len(names) {
		t.Fatalf("network-status has %d entries, want %d: %+v", len(statuses), len(names), statuses)
	}
	links := sb.links()
	for i, st := range statuses {
		if st.Name != names[i] || st.Interface != ifs[i] {
			t.Errorf("status %d = %s on %s, want %s on %s", i, st.Name, st.Interface, names[i], ifs[i])
			continue
		}
		l, ok := links[st.Interface]
		if !ok {
			t.Errorf("status names %s, which the pod does not have", st.Interface)
			continue
		}
		if st.Mac != l.Attrs().HardwareAddr.String() {
			t.Errorf("status MAC of %s = %s, pod has %s", st.Interface, st.Mac, l.Attrs().HardwareAddr)
		}
		var have []string
		for _, a := range sb.addrs(st.Interface) {
			have = append(have, strings.Split(a, "/")[0])
		}
		sort.Strings(have)
		want := append([]string(nil), st.IPs...)
		sort.Strings(want)
		if !slices.Equal(have, want) {
			t.Errorf("status IPs of %s = %v, pod has %v", st.Interface, want, have)
		}
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// checkEvents: one Normal AddedInterface event for the ADD, listing the
// interfaces in order. braidd sends its events in the background, so it is
// waited for.
func checkEvents(t *testing.T, n *node, pod string, ifs []string) {
	t.Helper()
	var got [][]string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		events, err := n.kube.CoreV1().Events(n.namespace).List(t.Context(), metav1.ListOptions{FieldSelector: "involvedObject.name=" + pod})
		if err != nil {
			t.Fatal(err)
		}
		got = got[:0]
		for _, e := range events.Items {
			if e.Reason == "AddedInterface" && e.Type == "Normal" {
				got = append(got, eventInterfaces(e.Message))
			}
		}
		if len(got) == 1 && slices.Equal(got[0], ifs) || time.Now().After(deadline) {
			break
		}
	}
	if len(got) != 1 || !slices.Equal(got[0], ifs) {
		t.Errorf("AddedInterface events listing %q, want one listing %q", got, ifs)
	}
}

// eventInterfaces reads the interfaces an AddedInterface event lists:
// "Add eth0 [10.1.0.5/24] from cluster, net1 [...] from ns/blue".
func eventInterfaces(msg string) []string {
	var out []string
	for _, part := range strings.Split(strings.TrimPrefix(msg, "Add "), ", ") {
		if f := strings.Fields(part); len(f) > 0 {
			out = append(out, f[0])
		}
	}
	return out
}
