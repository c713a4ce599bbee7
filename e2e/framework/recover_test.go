package framework

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestRecordRoundTrip writes a node record and reads it back: the same
// state, no temporary file left, and a record naming no absolute working
// directory is refused rather than undone.
func TestRecordRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, recordName)
	st := NodeState{
		WorkDir: "/tmp/braid-node-1", OwnsWorkDir: true, ContainerdDir: "/tmp/braid-node-1/containerd",
		HostBefore: []string{"/var/log/pods: absent"},
		Host: &HostState{
			Sysctls: map[string]string{"vm/panic_on_oom": "0"}, Created: []string{"/var/log/pods"},
			Saved: map[string]string{cniConfDir: "/tmp/braid-node-1/host-backup/0"},
		},
		Kubelet: &ProcessState{Name: "kubelet", PID: 42, StartTime: 7, BootID: "b"},
	}
	for range 2 { // the second write replaces the first
		if err := writeRecordFile(path, st); err != nil {
			t.Fatal(err)
		}
	}
	got, err := readRecord(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*got, st) {
		t.Errorf("record read back:\n%+v\nwant\n%+v", *got, st)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("directory of the record holds %d entries, want the record alone", len(entries))
	}
	if !reflect.DeepEqual(attachHost(st.Host).state(), st.Host) {
		t.Errorf("hostState round trip: got %+v, want %+v", attachHost(st.Host).state(), st.Host)
	}
	for _, workDir := range []string{"", "tmp/x", "/"} {
		st.WorkDir = workDir
		if err := writeRecordFile(path, st); err != nil {
			t.Fatal(err)
		}
		if _, err := readRecord(path); err == nil {
			t.Errorf("record with working directory %q: got no error", workDir)
		}
	}
}

// TestKillNodeProcesses runs a stand-in kubelet whose command line names a
// node's working directory, and another program that names it too: only the
// kubelet is the node's, and killNodeProcesses must end it and only it.
func TestKillNodeProcesses(t *testing.T) {
	tmp := t.TempDir()
	workDir := filepath.Join(tmp, "braid-node-1")
	if err := os.MkdirAll(workDir, 0o700); err != nil {
		t.Fatal(err)
	}
	logFile := filepath.Join(workDir, "kubelet.log")
	if err := os.WriteFile(logFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tail, err := exec.LookPath("tail")
	if err != nil {
		t.Skip(err)
	}
	kubelet := filepath.Join(tmp, "kubelet")
	if err := os.Symlink(tail, kubelet); err != nil {
		t.Fatal(err)
	}
	var procs []*process
	for _, argv0 := range []string{kubelet, tail} {
		p, err := startProcess(filepath.Base(argv0), filepath.Join(tmp, filepath.Base(argv0)+".out"), []string{argv0, "-f", logFile}, procOptions{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = p.stop(time.Second) })
		procs = append(procs, p)
	}
	done, err := killNodeProcesses(t.Context(), &Node{workDir: workDir})
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("killed kubelet %d", procs[0].id.PID); done != want {
		t.Errorf("killNodeProcesses() = %q, want %q", done, want)
	}
	if !procs[0].wait(5 * time.Second) {
		t.Error("the stand-in kubelet still runs")
	}
	if procs[1].exited() {
		t.Error("tail, which is no program of a node, was killed")
	}
}

// TestRecover starts a node with pods and lets go of it as a killed test
// process would: containerd dies, the kubelet runs on (as a detached one
// would), shims and pods run on, the host lock is dropped and nothing is
// put back. The next StartNode must undo that node before it snapshots the
// host: no process, network namespace or mount of the first node may
// remain, and after the second node's Stop the host must be as it was before
// the first.
func TestRecover(t *testing.T) {
	RequireNodeTools(t)
	plugins := requirePlugins(t, "bridge", "host-local")
	bridge := fmt.Sprintf("brec%d", os.Getpid()%100000)
	t.Cleanup(func() { deleteLink(t, bridge) })
	before := snapshotHost()
	cp, node := StartClusterForTest(t, NodeOptions{ReadyWithoutNetwork: true})
	ctx := t.Context()
	importPause(t, node)
	installBridgeNetwork(t, plugins, bridge, t.TempDir())
	if err := node.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	client, _, err := cp.Clients()
	if err != nil {
		t.Fatal(err)
	}
	if err := CreateNamespaceWithSA(ctx, client, nodeNamespace); err != nil {
		t.Fatal(err)
	}
	for _, hostNetwork := range []bool{false, true} {
		pod := pausePod(fmt.Sprintf("left-host-network-%v", hostNetwork), hostNetwork)
		if _, err := client.CoreV1().Pods(nodeNamespace).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := WaitForPod(ctx, client, nodeNamespace, pod.Name, time.Minute, PodRunning()); err != nil {
			t.Fatal(err)
		}
	}
	netns, err := node.podNetworks(ctx)
	if err != nil || len(netns) != 1 {
		t.Fatalf("network namespaces of the first node's pods: %v, %v; want one", netns, err)
	}
	workDir := node.WorkDir()
	abandon(t, node)
	cp.Stop() // it would have died with the process too

	var log LogBuffer
	opts := NodeOptions{ReadyWithoutNetwork: true, Log: &log}
	if testing.Verbose() {
		opts.Log = io.MultiWriter(&log, os.Stderr)
	}
	_, node = StartClusterForTest(t, opts)
	if !strings.Contains(log.String(), "recovered the host from a node that did not stop") {
		t.Errorf("the second node's log does not say it recovered the host:\n%s", log.String())
	}
	if pids := processesWith(workDir + "/"); len(pids) > 0 {
		t.Errorf("processes of the first node still run after the second started: %v", pids)
	}
	for _, path := range netns {
		if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("network namespace %s of the first node's pod: got %v, want it removed", path, err)
		}
	}
	if mounts, err := mountsUnder(workDir); err != nil || len(mounts) > 0 {
		t.Errorf("mounts under the first node's working directory: %v, %v; want none", mounts, err)
	}
	if st, err := readRecord(recordPath()); err != nil || st.WorkDir != node.WorkDir() {
		t.Errorf("record while the second node runs: %+v, %v; want the second node's", st, err)
	}

	node.Stop()
	if diffs := diffSnapshots(before, snapshotHost()); len(diffs) > 0 {
		t.Errorf("host after the second node's Stop differs from before the first node:\n%s", strings.Join(diffs, "\n"))
	}
	if _, err := os.Stat(recordPath()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("record after Stop: got %v, want it removed", err)
	}
	if strings.Contains(log.String(), "level=WARN") {
		t.Errorf("the second node's log has warnings:\n%s", log.String())
	}
}

// abandon lets go of the node as its test process would if killed:
// containerd dies of its parent-death signal, the host lock is dropped,
// nothing is put back, and Stop does nothing. The kubelet is left running,
// as a detached node's would be.
func abandon(t *testing.T, n *Node) {
	t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	n.containerd.signal(syscall.SIGKILL)
	if !n.containerd.wait(10 * time.Second) {
		t.Fatal("containerd did not die of SIGKILL")
	}
	if err := n.lock.Close(); err != nil {
		t.Fatal(err)
	}
	n.lock, n.host, n.kubelet, n.containerd, n.socket, n.ownsWorkDir = nil, nil, nil, nil, "", false
}

// diffSnapshots returns the lines of two snapshotHost results that differ.
func diffSnapshots(before, after []string) []string {
	var diffs []string
	for i := range max(len(before), len(after)) {
		var b, a string
		if i < len(before) {
			b = before[i]
		}
		if i < len(after) {
			a = after[i]
		}
		if a != b {
			diffs = append(diffs, fmt.Sprintf("%s, was %s", a, b))
		}
	}
	return diffs
}
