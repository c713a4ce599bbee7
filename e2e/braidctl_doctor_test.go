package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/containernetworking/plugins/pkg/testutils"
	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"

	"github.com/braid-cni/braid/ctl"
	"github.com/braid-cni/braid/doctor"
)

// runtimeConfDir writes the node's CNI config directory as the runtime
// sees it: braid's config list as file braidFile next to the cluster
// network's config as clusterFile.
func (n *node) runtimeConfDir(braidFile, clusterFile string) string {
	n.t.Helper()
	dir := filepath.Join(n.dir, "runtime-net.d")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		n.t.Fatal(err)
	}
	writeJSON(n.t, filepath.Join(dir, clusterFile), n.clusterConfig())
	writeJSON(n.t, filepath.Join(dir, braidFile), map[string]any{
		"cniVersion": n.version,
		"name":       "braid-net",
		"plugins":    []any{n.braidConf},
	})
	return dir
}

// doctor runs braidctl doctor in this process and returns its exit code
// and output.
func (n *node) doctor(confDir string, args ...string) (int, string) {
	n.t.Helper()
	var out, errOut bytes.Buffer
	args = append([]string{"doctor", "--cni-conf-dir", confDir, "--cni-bin-dir", shared.braidDir}, args...)
	code := ctl.Main(args, ctl.Streams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
	if errOut.Len() > 0 {
		n.t.Logf("braidctl stderr: %s", errOut.String())
	}
	return code, out.String()
}

func doctorResults(t *testing.T, out string) map[string]doctor.Result {
	t.Helper()
	var results []doctor.Result
	if err := json.Unmarshal([]byte(out), &results); err != nil {
		t.Fatalf("decode doctor output %q: %v", out, err)
	}
	m := map[string]doctor.Result{}
	for _, r := range results {
		m[r.Name] = r
	}
	return m
}

// TestBraidctlDoctorReleasesStaleEntry: a pod whose netns disappeared
// without a DEL leaves a journal entry and its leases; doctor names it,
// and doctor --fix releases it through braid's DEL while a healthy pod's
// entry and leases stay.
func TestBraidctlDoctorReleasesStaleEntry(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: network namespaces")
	}
	n := newNode(t, thin, "1.0.0")
	n.createNAD(n.namespace, "blue", n.bridgeNet("blue", 1, false))
	networks := map[string]string{nadv1.NetworkAttachmentAnnot: "blue"}
	stale := n.sandbox(n.createPod("stale", networks))
	stale.mustAdd()
	staleLeases := map[string][]string{"cluster": n.leases("cluster"), "blue": n.leases("blue")}
	healthy := n.sandbox(n.createPod("healthy", networks))
	healthy.mustAdd()
	healthyLeases := map[string][]string{}
	for _, net := range []string{"cluster", "blue"} {
		for _, ip := range n.leases(net) {
			if !slices.Contains(staleLeases[net], ip) {
				healthyLeases[net] = append(healthyLeases[net], ip)
			}
		}
		if len(staleLeases[net]) != 1 || len(healthyLeases[net]) != 1 {
			t.Fatalf("network %s leases: stale pod %v, healthy pod %v; want one each", net, staleLeases[net], healthyLeases[net])
		}
	}

	// The sandbox goes away without a DEL.
	path := stale.netns.Path()
	if err := stale.netns.Close(); err != nil {
		t.Fatal(err)
	}
	if err := testutils.UnmountNS(stale.netns); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("netns %s still there: %v", path, err)
	}

	confDir := n.runtimeConfDir("00-braid.conflist", "10-cluster.conflist")
	code, out := n.doctor(confDir, "-o", "json")
	if code != 0 {
		t.Errorf("doctor exit %d, want 0 (warnings only):\n%s", code, out)
	}
	got := doctorResults(t, out)
	for _, name := range []string{"cni-config", "braid-config", "cluster-network", "binary braid", "binary bridge", "binary host-local", "kubeconfig"} {
		if got[name].Status != doctor.OK {
			t.Errorf("%s: %+v, want ok", name, got[name])
		}
	}
	j := got["journal"]
	if j.Status != doctor.Warn || !strings.Contains(j.Detail, stale.containerID) || strings.Contains(j.Detail, healthy.containerID) || j.Fix == "" {
		t.Errorf("journal: %+v, want a warning naming %s only", j, stale.containerID)
	}
	// The table names it on a warn line too.
	_, table := n.doctor(confDir)
	t.Logf("braidctl doctor:\n%s", table)
	if !strings.Contains(table, "warn  journal") || !strings.Contains(table, stale.containerID+" (pod "+n.namespace+"/stale)") {
		t.Errorf("table does not warn about %s:\n%s", stale.containerID, table)
	}
	if got := n.journal(); len(got) != 2 {
		t.Errorf("doctor without --fix changed the journal: %v", got)
	}

	code, out = n.doctor(confDir, "--fix", "-o", "json")
	if code != 0 {
		t.Errorf("doctor --fix exit %d:\n%s", code, out)
	}
	if j := doctorResults(t, out)["journal"]; j.Status != doctor.OK || !strings.Contains(j.Detail, "released "+stale.containerID) {
		t.Errorf("journal after --fix: %+v, want ok releasing %s", j, stale.containerID)
	}
	if got := n.journal(); !slices.Equal(got, []string{healthy.containerID}) {
		t.Errorf("journal holds %v, want only %s", got, healthy.containerID)
	}
	for _, net := range []string{"cluster", "blue"} {
		if got := n.leases(net); !slices.Equal(got, healthyLeases[net]) {
			t.Errorf("network %s leases %v, want the healthy pod's %v only (stale %v released)", net, got, healthyLeases[net], staleLeases[net])
		}
	}
	if links := healthy.links(); len(links) != 2 {
		t.Errorf("healthy pod has interfaces %v, want eth0 and net1", keys(links))
	}

	// Nothing is stale any more.
	code, out = n.doctor(confDir, "-o", "json")
	if j := doctorResults(t, out)["journal"]; code != 0 || j.Status != doctor.OK || !strings.Contains(j.Detail, "1 entries") {
		t.Errorf("doctor after --fix: exit %d, journal %+v", code, j)
	}
	if h := doctorResults(t, out)["hot-plug"]; h.Status != doctor.OK || !strings.Contains(h.Detail, "1 running pods match") {
		t.Errorf("hot-plug check: %+v, want ok with the healthy pod in line", h)
	}
	// Thin mode applies no annotation change to a running pod: doctor
	// says which pod differs and how.
	setNetworks(t, n, healthy.pod.Name, "blue, green")
	_, out = n.doctor(confDir, "-o", "json")
	if h := doctorResults(t, out)["hot-plug"]; h.Status != doctor.Warn || !strings.Contains(h.Detail, n.namespace+"/"+healthy.pod.Name+" (add "+n.namespace+"/green)") {
		t.Errorf("hot-plug check after the annotation changed: %+v, want a warning naming the pod and the network to add", h)
	}
	healthy.mustDel()
}

// TestBraidctlDoctorOtherConfigWins: when another config sorts before
// braid's, the runtime never calls braid; doctor fails naming the winner.
func TestBraidctlDoctorOtherConfigWins(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: like every e2e test, it starts the control plane as root")
	}
	n := newNode(t, thin, "1.0.0")
	confDir := n.runtimeConfDir("10-braid.conflist", "05-cluster.conflist")
	code, out := n.doctor(confDir)
	if code != 1 {
		t.Errorf("doctor exit %d, want 1:\n%s", code, out)
	}
	first, _, _ := strings.Cut(out, "\n")
	if !strings.HasPrefix(first, "fail") || !strings.Contains(first, "cni-config") ||
		!strings.Contains(first, filepath.Join(confDir, "05-cluster.conflist")+" wins, not braid's") {
		t.Errorf("first line %q, want cni-config failing, naming 05-cluster.conflist", first)
	}
}

// TestBraidctlDoctorThick: with the shim's config, doctor finds braid-shim
// and asks the real braidd on its socket for /healthz and /readyz.
func TestBraidctlDoctorThick(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: like every e2e test, it starts the control plane as root")
	}
	n := newNode(t, thick, "1.0.0")
	confDir := n.runtimeConfDir("00-braid.conflist", "10-cluster.conflist")
	code, out := n.doctor(confDir, "-o", "json")
	if code != 0 {
		t.Errorf("doctor exit %d, want 0:\n%s", code, out)
	}
	got := doctorResults(t, out)
	for _, name := range []string{"binary braid-shim", "daemon", "journal"} {
		if got[name].Status != doctor.OK {
			t.Errorf("%s: %+v, want ok", name, got[name])
		}
	}
	if d := got["daemon"].Detail; !strings.Contains(d, n.daemon.SocketDir) {
		t.Errorf("daemon detail %q does not name the socket dir %s", d, n.daemon.SocketDir)
	}
}
