package node

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/braid-cni/braid/e2e/framework"
)

// installed: the DaemonSet put braid in place, wrapping the node's own
// config as the cluster network, with what the mode needs.
func installed(t *testing.T, m mode) {
	for _, f := range m.files {
		if err := waitFile(t.Context(), f, true, time.Second); err != nil {
			t.Error(err)
		}
	}
	data := readFile(t, filepath.Join(hostConfDir, braidFile))
	if !strings.Contains(data, `"type": "`+m.pluginType+`"`) {
		t.Errorf("%s does not run %s:\n%s", braidFile, m.pluginType, data)
	}
	for _, want := range append([]string{filepath.Join(hostConfDir, primaryFile)}, m.conf...) {
		if !strings.Contains(data, want) {
			t.Errorf("%s does not hold %s:\n%s", braidFile, want, data)
		}
	}
}

// annotationForms: pods with the short and the JSON form come up with
// the interfaces they asked for, network-status says what the pod sees, and
// deleting them releases every lease.
func annotationForms(t *testing.T, m mode) {
	e := newEnv(t, m, "forms")
	e.bridgeNAD("blue", "br-nblue", "10.89.1.0/24")
	e.bridgeNAD("green", "br-ngreen", "10.89.2.0/24")
	e.pod("short", "blue, green@green0")
	e.pod("json", `[{"name": "blue", "interface": "blue0"}, {"name": "green", "namespace": "`+e.namespace+`"}]`)

	short := e.running("short")
	st := matchStatus(t, short, []string{"eth0", "net1", "green0"})
	if st["eth0"].Name != "cluster" || !st["eth0"].Default || st["net1"].Name != e.namespace+"/blue" || st["green0"].Name != e.namespace+"/green" {
		t.Errorf("short-form network-status = %+v", st)
	}
	json := e.running("json")
	st = matchStatus(t, json, []string{"eth0", "blue0", "net2"})
	if st["blue0"].Name != e.namespace+"/blue" || st["net2"].Name != e.namespace+"/green" {
		t.Errorf("JSON-form network-status = %+v", st)
	}

	e.deletePod(t.Context(), "short")
	e.deletePod(t.Context(), "json")
	for _, net := range []string{"cluster", "blue", "green"} {
		if l := leases(net); len(l) != 0 {
			t.Errorf("after deleting the pods network %s still leases %v", net, l)
		}
	}
	if j := journal(); len(j) != 0 {
		t.Errorf("after deleting the pods braid's journal still holds %v", j)
	}
}

// podsTalk: two pods reach each other over a secondary bridge network
// and over a macvlan network.
func podsTalk(t *testing.T, m mode) {
	e := newEnv(t, m, "talk")
	e.bridgeNAD("blue", "br-tblue", "10.89.3.0/24")
	e.macvlanNAD("mv", "nmv0", "10.89.4.0/24")
	e.pod("a", "blue, mv")
	e.pod("b", "blue, mv")
	a, b := e.running("a"), e.running("b")
	bStatus := matchStatus(t, b, []string{"eth0", "net1", "net2"})
	matchStatus(t, a, []string{"eth0", "net1", "net2"})
	for _, ifName := range []string{"net1", "net2"} {
		ips := bStatus[ifName].IPs
		if len(ips) == 0 {
			t.Fatalf("pod b has no IP on %s", ifName)
		}
		got, err := dialFrom(t, a, ips[0])
		if err != nil {
			t.Errorf("pod a cannot reach pod b at %s (%s): %v", ips[0], ifName, err)
			continue
		}
		if !sameSet(names(got), []string{"eth0", "net1", "net2"}) {
			t.Errorf("answer from %s came from a pod with %v", ips[0], names(got))
		}
	}
}

// missingNAD: a pod naming a NAD that does not exist yet waits in
// ContainerCreating with an event naming the NAD, and comes up once the NAD
// is created (the kubelet retries).
func missingNAD(t *testing.T, m mode) {
	e := newEnv(t, m, "late")
	e.pod("waits", "later")
	ctx := t.Context()
	deadline := time.Now().Add(podTimeout)
	for {
		if strings.Contains(framework.PodEvents(ctx, e.kube, e.namespace, "waits"), e.namespace+"/later") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no event names the missing NAD; events:\n%s", framework.PodEvents(ctx, e.kube, e.namespace, "waits"))
		}
		time.Sleep(500 * time.Millisecond)
	}
	pod, err := e.kube.CoreV1().Pods(e.namespace).Get(ctx, "waits", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pod.Status.Phase != "Pending" {
		t.Fatalf("pod phase %s, want Pending while the NAD is missing", pod.Status.Phase)
	}
	e.bridgeNAD("later", "br-nlater", "10.89.5.0/24")
	pod = e.running("waits")
	matchStatus(t, pod, []string{"eth0", "net1"})
}

// restarts: restarting the kubelet and containerd keeps running pods'
// networks, and deleting the pods afterwards still releases everything.
func restarts(t *testing.T, m mode) {
	e := newEnv(t, m, "restart")
	e.bridgeNAD("blue", "br-rblue", "10.89.6.0/24")
	e.pod("steady", "blue")
	before := matchStatus(t, e.running("steady"), []string{"eth0", "net1"})

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := shared.node.RestartKubelet(ctx); err != nil {
		t.Fatal(err)
	}
	if err := shared.node.RestartContainerd(ctx); err != nil {
		t.Fatal(err)
	}
	after := matchStatus(t, e.running("steady"), []string{"eth0", "net1"})
	for _, ifName := range []string{"eth0", "net1"} {
		if !sameSet(before[ifName].IPs, after[ifName].IPs) {
			t.Errorf("%s changed from %v to %v across the restarts", ifName, before[ifName].IPs, after[ifName].IPs)
		}
	}
	e.deletePod(ctx, "steady")
	for _, net := range []string{"cluster", "blue"} {
		if l := leases(net); len(l) != 0 {
			t.Errorf("after the restarts and the delete network %s still leases %v", net, l)
		}
	}
	if j := journal(); len(j) != 0 {
		t.Errorf("after the restarts and the delete braid's journal still holds %v", j)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// hotPlug: in thick mode a Running pod gets a network by a patch of its
// networks annotation: network-status lists it, the workload inside sees
// it and reaches another pod over it; removed again, it is gone; the pod
// never restarts (same container, restart count 0), and deleting the pods
// releases every lease. In thin mode the patch changes nothing on the
// running pod.
func hotPlug(t *testing.T, m mode) {
	e := newEnv(t, m, "plug")
	e.bridgeNAD("blue", "br-pblue", "10.89.7.0/24")
	e.bridgeNAD("green", "br-pgreen", "10.89.8.0/24")
	e.pod("a", "blue")
	e.pod("b", "blue, green")
	a := e.running("a")
	bStatus := matchStatus(t, e.running("b"), []string{"eth0", "net1", "net2"})
	matchStatus(t, a, []string{"eth0", "net1"})
	before := a.Status.ContainerStatuses[0]

	e.setNetworks("a", "blue, green")
	if m.pluginType == "braid-shim" {
		a = e.waitStatus("a", []string{"eth0", "net1", "net2"})
		if st := matchStatus(t, a, []string{"eth0", "net1", "net2"}); st["net2"].Name != e.namespace+"/green" {
			t.Errorf("net2 is %s, want %s/green", st["net2"].Name, e.namespace)
		}
		green := bStatus["net2"].IPs
		if len(green) == 0 {
			t.Fatal("pod b has no IP on green")
		}
		if got, err := dialFrom(t, a, green[0]); err != nil || !sameSet(names(got), []string{"eth0", "net1", "net2"}) {
			t.Errorf("pod a reaching pod b over the hot-plugged green (%s): %v, %v", green[0], names(got), err)
		}
		e.setNetworks("a", "blue")
		a = e.waitStatus("a", []string{"eth0", "net1"})
		matchStatus(t, a, []string{"eth0", "net1"})

		// As KubeVirt's virt-controller hot-plugs a VM's NIC: every
		// network in the JSON form with its namespace and interface (a
		// hashed name for the new one), then network-status awaited. The
		// kept blue, written anew, stays as it is.
		blueIPs := matchStatus(t, a, []string{"eth0", "net1"})["net1"].IPs
		vmIf := "pod5a1e2f3c4d0"
		e.setNetworks("a", fmt.Sprintf(`[{"name":"blue","namespace":%q,"interface":"net1"},{"name":"green","namespace":%q,"interface":%q}]`, e.namespace, e.namespace, vmIf))
		a = e.waitStatus("a", []string{"eth0", "net1", vmIf})
		if got, err := dialFrom(t, a, bStatus["net2"].IPs[0]); err != nil || !sameSet(names(got), []string{"eth0", "net1", "net2"}) {
			t.Errorf("pod a reaching pod b over %s, hot-plugged as KubeVirt does: %v, %v", vmIf, names(got), err)
		}
		if got := matchStatus(t, a, []string{"eth0", "net1", vmIf})["net1"].IPs; !slices.Equal(got, blueIPs) {
			t.Errorf("net1 has %v after blue was written in the JSON form, was %v: it was made again", got, blueIPs)
		}
		e.setNetworks("a", "blue")
		a = e.waitStatus("a", []string{"eth0", "net1"})
	} else {
		time.Sleep(5 * time.Second) // a state to hold: thin mode applies nothing
		a = e.running("a")
		matchStatus(t, a, []string{"eth0", "net1"})
	}
	after := a.Status.ContainerStatuses[0]
	if after.RestartCount != 0 || after.ContainerID != before.ContainerID {
		t.Errorf("pod a restarted: container %s (restarts %d), was %s", after.ContainerID, after.RestartCount, before.ContainerID)
	}

	e.deletePod(t.Context(), "a")
	e.deletePod(t.Context(), "b")
	for _, net := range []string{"cluster", "blue", "green"} {
		if l := leases(net); len(l) != 0 {
			t.Errorf("after deleting the pods network %s still leases %v", net, l)
		}
	}
}
