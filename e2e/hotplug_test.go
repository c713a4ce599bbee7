package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/braid-cni/braid/e2e/framework"
)

// setNetworks patches the pod's networks annotation, as kubectl patch does.
func setNetworks(t *testing.T, n *node, pod, networks string) {
	t.Helper()
	if err := framework.SetNetworks(t.Context(), n.kube, n.namespace, pod, networks); err != nil {
		t.Fatal(err)
	}
}

// statusInterfaces lists "interface=network" of the pod's network-status.
func statusInterfaces(t *testing.T, n *node, pod string) []string {
	t.Helper()
	pod0 := n.getPod(pod)
	if _, ok := pod0.Annotations[nadv1.NetworkStatusAnnot]; !ok {
		return nil // thick mode writes it in the background
	}
	var out []string
	for _, s := range networkStatus(t, pod0) {
		out = append(out, s.Interface+"="+s.Name)
	}
	return out
}

// countEvents counts the pod's events of type and reason whose message
// contains part.
func countEvents(t *testing.T, n *node, pod, eventType, reason, part string) int {
	t.Helper()
	events, err := n.kube.CoreV1().Events(n.namespace).List(t.Context(), metav1.ListOptions{FieldSelector: "involvedObject.name=" + pod})
	if err != nil {
		t.Fatal(err)
	}
	count := 0
	for _, e := range events.Items {
		if e.Type == eventType && e.Reason == reason && strings.Contains(e.Message, part) {
			count += max(int(e.Count), 1)
		}
	}
	return count
}

// TestHotplug: braidd applies a change of a running pod's networks
// annotation: an added network appears on the next free interface with its
// address, lease, network-status and event; an interface present since the
// pod's creation is removed with its lease; a hot-add that fails is rolled
// back once and not retried; a network whose NAD comes later is attached
// once it exists; the runtime's final DEL releases everything, hot-plugged
// attachments included.
func TestHotplug(t *testing.T) {
	n := newNode(t, thick, "1.0.0")
	n.createNAD(n.namespace, "blue", n.bridgeNet("blue", 1, false))
	n.createNAD(n.namespace, "green", n.bridgeNet("green", 2, false))
	sb := n.sandbox(n.createPod("p", map[string]string{nadv1.NetworkAttachmentAnnot: "blue"}))
	sb.mustAdd()

	setNetworks(t, n, "p", "blue, green")
	eventually(t, 30*time.Second, "net2 added", func() error {
		if _, ok := sb.links()["net2"]; !ok {
			return fmt.Errorf("pod has %v", keys(sb.links()))
		}
		if got, want := statusInterfaces(t, n, "p"), []string{"eth0=cluster", "net1=" + n.namespace + "/blue", "net2=" + n.namespace + "/green"}; !slices.Equal(got, want) {
			return fmt.Errorf("network-status %q, want %q", got, want)
		}
		return nil
	})
	if addrs := sb.addrs("net2"); len(addrs) != 1 || !strings.HasPrefix(addrs[0], strings.TrimSuffix(n.subnet(2), "0/24")) {
		t.Errorf("net2 addresses %v, want one in %s", addrs, n.subnet(2))
	}
	if l := n.leases("green"); len(l) != 1 {
		t.Errorf("green leases %v, want one", l)
	}
	eventually(t, 30*time.Second, "AddedInterface event of net2", func() error {
		if countEvents(t, n, "p", corev1.EventTypeNormal, "AddedInterface", "Add net2") != 1 {
			return fmt.Errorf("none yet")
		}
		return nil
	})

	// net1 has been there since the pod was created.
	setNetworks(t, n, "p", "green")
	eventually(t, 30*time.Second, "net1 removed", func() error {
		if _, ok := sb.links()["net1"]; ok {
			return fmt.Errorf("pod still has net1")
		}
		if got, want := statusInterfaces(t, n, "p"), []string{"eth0=cluster", "net2=" + n.namespace + "/green"}; !slices.Equal(got, want) {
			return fmt.Errorf("network-status %q, want %q", got, want)
		}
		return nil
	})
	if l := n.leases("blue"); len(l) != 0 {
		t.Errorf("blue leases %v after net1 was removed, want none", l)
	}

	// macvlan on a master that does not exist fails; the pod keeps what it
	// had, one Warning tells it, and nothing tries again.
	n.createNAD(n.namespace, "broken", map[string]any{"cniVersion": n.version, "name": "broken", "type": "macvlan", "master": "nomaster0",
		"ipam": map[string]any{"type": "host-local", "dataDir": n.dataDir, "ranges": []any{[]any{map[string]any{"subnet": n.subnet(3)}}}}})
	setNetworks(t, n, "p", "green, broken")
	w := waitWarning(t, n, "p", "AddFailed")
	if !strings.Contains(w.Message, n.namespace+"/broken") || !strings.Contains(w.Message, "macvlan") {
		t.Errorf("Warning %q does not name the network and plugin", w.Message)
	}
	time.Sleep(3 * time.Second) // a state to hold: no second attempt
	if c := countEvents(t, n, "p", corev1.EventTypeWarning, "AddFailed", n.namespace+"/broken"); c != 1 {
		t.Errorf("%d AddFailed events for broken, want 1 (no retries)", c)
	}
	if got := keys(sb.links()); !slices.Equal(got, []string{"eth0", "net2"}) {
		t.Errorf("pod has %v after the failed hot-add, want eth0 and net2", got)
	}
	if l := n.leases("broken"); len(l) != 0 {
		t.Errorf("broken leases %v, want none", l)
	}

	// A NAD that does not exist yet: tried again until it does.
	setNetworks(t, n, "p", "green, late")
	time.Sleep(time.Second)
	n.createNAD(n.namespace, "late", n.bridgeNet("late", 4, false))
	eventually(t, 60*time.Second, "late attached once its NAD exists", func() error {
		if _, ok := sb.links()["net1"]; !ok {
			return fmt.Errorf("pod has %v", keys(sb.links()))
		}
		return nil
	})

	// braidctl, as a user who may patch pods: attach waits for
	// network-status and prints it; detach finds the selection behind an
	// interface.
	admin := filepath.Join(t.TempDir(), "admin.kubeconfig")
	if err := shared.cp.WriteKubeconfig(admin, true); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := explainCtl(t, "attach", "p", "blue@b0", "-n", n.namespace, "--kubeconfig", admin)
	if code != 0 || !strings.Contains(stdout, "b0") || !strings.Contains(stdout, n.namespace+"/blue") {
		t.Fatalf("braidctl attach = %d, stdout %q, stderr %q; want network-status listing b0", code, stdout, stderr)
	}
	if _, ok := sb.links()["b0"]; !ok {
		t.Errorf("after braidctl attach the pod has %v, want b0", keys(sb.links()))
	}
	stdout, stderr, code = explainCtl(t, "detach", "p", "net1", "-n", n.namespace, "--kubeconfig", admin)
	if code != 0 || strings.Contains(stdout, "net1") {
		t.Fatalf("braidctl detach = %d, stdout %q, stderr %q; want network-status without net1", code, stdout, stderr)
	}
	if got, want := n.getPod("p").Annotations[nadv1.NetworkAttachmentAnnot], n.namespace+"/green, "+n.namespace+"/blue@b0"; got != want {
		t.Errorf("annotation after attach and detach = %q, want %q", got, want)
	}
	if l := n.leases("late"); len(l) != 0 {
		t.Errorf("late leases %v after detach, want none", l)
	}
	// A failing attach prints braid's Warning.
	_, stderr, code = explainCtl(t, "attach", "p", "broken@x0", "-n", n.namespace, "--kubeconfig", admin, "--timeout", "30s")
	if code == 0 || !strings.Contains(stderr, "AddFailed") || !strings.Contains(stderr, "macvlan") {
		t.Errorf("braidctl attach of a failing network = %d, stderr %q; want braid's AddFailed Warning", code, stderr)
	}

	sb.mustDel()
	released(t, n, sb, "green", "late", "broken")
}

// recordedCalls lists "COMMAND ifName" of every call the record plugin of
// s saw, in order.
func (s *slowNode) recordedCalls(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(s.record)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var c struct{ Command, IfName string }
		if err := json.Unmarshal([]byte(line), &c); err != nil {
			t.Fatalf("record line %q: %v", line, err)
		}
		out = append(out, c.Command+" "+c.IfName)
	}
	return out
}

// inSlowHotAdd attaches pod p to blue in thick mode, adds the slow
// network to its annotation and returns once braidd's hot-add is in the
// slow delegate: the journal names net2 and its bridge holds a lease.
func inSlowHotAdd(t *testing.T) (*slowNode, *sandbox) {
	t.Helper()
	s := newSlowNode(t, thick)
	s.createNAD(s.namespace, "blue", s.bridgeNet("blue", 1, false))
	sb := s.sandbox(s.createPod("p", map[string]string{nadv1.NetworkAttachmentAnnot: "blue"}))
	sb.mustAdd()
	setNetworks(t, s.node, "p", "blue, slow")
	s.waitEntered(t)
	return s, sb
}

// TestHotplugBraiddKilled: braidd dies (SIGKILL) while a hot-add is in a
// delegate, after the journal named the new attachment and the bridge
// before it leased an address. The restarted braidd deletes the half-made
// attachment and makes it again: one interface, one lease, the status and
// the journal agree, and the runtime's DEL releases everything.
func TestHotplugBraiddKilled(t *testing.T) {
	s, sb := inSlowHotAdd(t)
	s.daemon.Kill()
	// The orphaned delegate goes on; let it end before braidd is back.
	if err := os.WriteFile(s.release, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s.daemon.restart(s.daemon.settings)

	eventually(t, 30*time.Second, "net2 made again by the restarted braidd", func() error {
		if got, want := statusInterfaces(t, s.node, "p"), []string{"eth0=cluster", "net1=" + s.namespace + "/blue", "net2=" + s.namespace + "/slow"}; !slices.Equal(got, want) {
			return fmt.Errorf("network-status %q, want %q", got, want)
		}
		return nil
	})
	if got, want := s.recordedCalls(t), []string{"ADD net2", "DEL net2", "ADD net2"}; !slices.Equal(got, want) {
		t.Errorf("slow delegate calls %q, want %q (the half-made attachment deleted, then made once)", got, want)
	}
	if got := keys(sb.links()); !slices.Equal(got, []string{"eth0", "net1", "net2"}) {
		t.Errorf("pod has %v, want eth0, net1, net2", got)
	}
	if l := s.leases("slow"); len(l) != 1 {
		t.Errorf("slow leases %v, want one", l)
	}
	if p := s.explainJournal(sb.containerID); len(p.Attachments) != 3 || len(p.Attachments[2].Result) == 0 {
		t.Errorf("journal %+v, want three attachments, net2 with its result", p.Attachments)
	}

	sb.mustDel()
	released(t, s.node, sb, "slow")
}

// TestHotplugDelDuringSync: the runtime's DEL arrives while a hot-add is in
// a slow delegate. braidd cancels the hot-add, the DEL waits for it and
// then deletes every attachment the journal names, the one being added
// too: no interface, lease or journal entry is left.
func TestHotplugDelDuringSync(t *testing.T) {
	s, sb := inSlowHotAdd(t)
	deleted := make(chan error, 1)
	go func() { deleted <- sb.del() }()
	select {
	case err := <-deleted:
		if err != nil {
			t.Fatalf("DEL during a hot-add: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("DEL still waits 30s after it began: the hot-add was not cancelled")
	}
	released(t, s.node, sb, "slow")
	if got := s.recordedCalls(t); len(got) < 2 || got[len(got)-1] != "DEL net2" {
		t.Errorf("slow delegate calls %q, want its ADD then a DEL of net2", got)
	}
}
