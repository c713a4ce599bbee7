package ctl

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/braid-cni/braid/doctor"
	"github.com/braid-cni/braid/journal"
	"github.com/braid-cni/braid/plan"
)

// doctorNode is a node's directories: the runtime's conf and bin dirs,
// braid's plugin dir, journal and confDir.
type doctorNode struct {
	confDir, binDir, pluginDir, cniDir, multusDir string
}

func newDoctorNode(t *testing.T) *doctorNode {
	t.Helper()
	dir := t.TempDir()
	n := &doctorNode{
		confDir: filepath.Join(dir, "net.d"), binDir: filepath.Join(dir, "bin"), pluginDir: filepath.Join(dir, "plugins"),
		cniDir: filepath.Join(dir, "braid"), multusDir: filepath.Join(dir, "multus"),
	}
	cluster := filepath.Join(n.confDir, "10-cluster.conflist")
	writeDoctorFile(t, cluster, `{"cniVersion":"1.0.0","name":"cluster","plugins":[{"type":"bridge"}]}`)
	writeDoctorFile(t, filepath.Join(n.confDir, "00-braid.conflist"), `{"cniVersion":"1.0.0","name":"braid-net","plugins":[{
		"type":"braid","clusterNetwork":"`+cluster+`","cniDir":"`+n.cniDir+`","binDir":"`+n.pluginDir+`","confDir":"`+n.multusDir+`"}]}`)
	// Shell-script plugins: VERSION answers 0.3.1 to 1.1.0, every other verb
	// succeeds and leaves a mark.
	script := "#!/bin/sh\nif [ \"$CNI_COMMAND\" = VERSION ]; then echo '{\"cniVersion\":\"1.1.0\",\"supportedVersions\":[\"0.3.1\",\"0.4.0\",\"1.0.0\",\"1.1.0\"]}'; exit 0; fi\n" +
		"echo \"$CNI_COMMAND $CNI_CONTAINERID $CNI_IFNAME\" >> \"$(dirname \"$0\")/calls\"\n"
	for _, p := range []string{filepath.Join(n.binDir, "braid"), filepath.Join(n.pluginDir, "bridge")} {
		writeDoctorFile(t, p, script)
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return n
}

func writeDoctorFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// journalEntry plants a journaled plan for id whose netns is netns.
func (n *doctorNode) journalEntry(t *testing.T, id, netns string) {
	t.Helper()
	p := &plan.Plan{
		Version: plan.Version, ContainerID: id, NetNS: netns, IfName: "eth0",
		Args: [][2]string{{"K8S_POD_NAMESPACE", "ns1"}, {"K8S_POD_NAME", id}},
		Pod:  plan.PodRef{Namespace: "ns1", Name: id},
		Attachments: []plan.Attachment{{IfName: "eth0", Network: "cluster", Cluster: true,
			Config: json.RawMessage(`{"cniVersion":"1.0.0","name":"cluster","plugins":[{"type":"bridge"}]}`)}},
	}
	data, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := journal.New(n.cniDir).Write(id, data); err != nil {
		t.Fatal(err)
	}
}

func (n *doctorNode) run(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	args = append([]string{"doctor", "--cni-conf-dir", n.confDir, "--cni-bin-dir", n.binDir}, args...)
	code := Main(args, Streams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
	if errOut.Len() > 0 {
		t.Logf("stderr: %s", errOut.String())
	}
	return code, out.String()
}

func resultsByName(t *testing.T, out string) map[string]doctor.Result {
	t.Helper()
	var results []doctor.Result
	if err := json.Unmarshal([]byte(out), &results); err != nil {
		t.Fatalf("decode %q: %v", out, err)
	}
	m := map[string]doctor.Result{}
	for _, r := range results {
		m[r.Name] = r
	}
	return m
}

func TestDoctorHealthyNodeWithStaleEntry(t *testing.T) {
	n := newDoctorNode(t)
	n.journalEntry(t, "stale1", filepath.Join(t.TempDir(), "netns-gone"))
	n.journalEntry(t, "alive", "/proc/self/ns/net")

	code, out := n.run(t, "-o", "json")
	if code != 0 {
		t.Errorf("exit %d, want 0 (warnings only):\n%s", code, out)
	}
	got := resultsByName(t, out)
	for name, want := range map[string]doctor.Status{
		"cni-config": doctor.OK, "braid-config": doctor.OK, "cluster-network": doctor.OK,
		"binary braid": doctor.OK, "binary bridge": doctor.OK, "kubeconfig": doctor.Warn, "journal": doctor.Warn,
	} {
		if got[name].Status != want {
			t.Errorf("%s: %+v, want %s", name, got[name], want)
		}
	}
	if _, thick := got["daemon"]; thick {
		t.Errorf("daemon checked in thin mode: %+v", got["daemon"])
	}
	if d := got["journal"].Detail; !strings.Contains(d, "stale1") || strings.Contains(d, "alive") {
		t.Errorf("journal detail %q: want stale1 named, alive not", d)
	}

	// --fix runs braid's own DEL in-process: the delegate is called with
	// DEL and the entry goes; the live one stays.
	code, out = n.run(t, "--fix")
	if code != 0 || !strings.Contains(out, "released stale1 (pod ns1/stale1)") {
		t.Errorf("doctor --fix: exit %d\n%s", code, out)
	}
	calls, err := os.ReadFile(filepath.Join(n.pluginDir, "calls"))
	if err != nil || !strings.Contains(string(calls), "DEL stale1 eth0") {
		t.Errorf("delegate calls %q, %v; want DEL stale1 eth0", calls, err)
	}
	ids, err := journal.New(n.cniDir).List()
	if err != nil || len(ids) != 1 || ids[0] != "alive" {
		t.Errorf("journal after --fix: %v, %v; want [alive]", ids, err)
	}
}

func TestDoctorOtherConfigWins(t *testing.T) {
	n := newDoctorNode(t)
	writeDoctorFile(t, filepath.Join(n.confDir, "00-aaa-calico.conflist"), `{"cniVersion":"1.0.0","name":"calico","plugins":[{"type":"calico"}]}`)
	code, out := n.run(t)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	lines := strings.Split(out, "\n")
	if !strings.HasPrefix(lines[0], "fail") || !strings.Contains(lines[0], "cni-config") || !strings.Contains(lines[0], "00-aaa-calico.conflist wins, not braid's") {
		t.Errorf("first line %q, want a failing cni-config naming the winner", lines[0])
	}
	if !strings.Contains(lines[1], "→ rename braid's config to sort before 00-aaa-calico.conflist") {
		t.Errorf("second line %q, want the fix", lines[1])
	}
}

func TestDoctorNoConfDir(t *testing.T) {
	n := newDoctorNode(t)
	n.confDir = filepath.Join(n.confDir, "missing")
	code, out := n.run(t, "-o", "yaml")
	if code != 1 || !strings.Contains(out, "status: fail") || !strings.Contains(out, "no usable CNI config") {
		t.Errorf("exit %d, output:\n%s", code, out)
	}
}
