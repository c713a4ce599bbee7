package framework

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const (
	nodeNamespace = "node-smoke"
	smokeSubnet   = "10.250.77.0/24"
	smokeNetwork  = "node-smoke"
)

// TestNode runs a pod on a real node through a plain bridge + host-local
// network (no braid), installed the way a CNI DaemonSet would: after the
// node started without a network. It checks the pod's address and that its
// lease is released, also for a pod still running at Stop, and that Stop
// puts the host back.
func TestNode(t *testing.T) {
	RequireNodeTools(t)
	plugins := requirePlugins(t, "bridge", "host-local")
	// Unique per test binary: the bridge is deleted after the node released
	// the host to the next one.
	bridge := fmt.Sprintf("bsmoke%d", os.Getpid()%100000)
	t.Cleanup(func() { deleteLink(t, bridge) })
	var log LogBuffer
	opts := NodeOptions{ReadyWithoutNetwork: true, Log: &log}
	if testing.Verbose() {
		opts.Log = io.MultiWriter(&log, os.Stderr)
	}
	cp, node := StartClusterForTest(t, opts)
	ctx := t.Context()

	importPause(t, node)
	leases := t.TempDir()
	if _, err := os.Stat(filepath.Join(cniBinDir, "loopback")); err != nil {
		t.Errorf("StartNode must install the loopback plugin containerd needs: %v", err)
	}
	installBridgeNetwork(t, plugins, bridge, leases)
	readyStart := time.Now()
	if err := node.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("node ready with the network %v after the CNI config was written", time.Since(readyStart).Round(time.Millisecond))

	t.Run("pod", func(t *testing.T) { testSmokePod(ctx, t, cp, node, leases, false) })
	t.Run("restart kubelet", func(t *testing.T) { testNodeRestart(ctx, t, "kubelet", node.RestartKubelet) })
	t.Run("restart containerd", func(t *testing.T) { testNodeRestart(ctx, t, "containerd", node.RestartContainerd) })
	t.Run("pod after restarts", func(t *testing.T) { testSmokePod(ctx, t, cp, node, leases, true) })

	testStopWithPods(ctx, t, cp, node, leases)
	// Stop reports problems, a host not put back included, as warnings.
	if strings.Contains(log.String(), "level=WARN") {
		t.Errorf("node log has warnings:\n%s", log.String())
	}
}

// testStopWithPods leaves a pod on the bridge network and a host-network
// pod running and stops the node: Stop must delete them, CNI DEL included,
// before it removes the network's plugins and config, and leave no process
// of the node behind.
func testStopWithPods(ctx context.Context, t *testing.T, cp *ControlPlane, node *Node, leases string) {
	client, _, err := cp.Clients()
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, hostNetwork := range []bool{false, true} {
		pod := pausePod(fmt.Sprintf("left-host-network-%v", hostNetwork), hostNetwork)
		if _, err := client.CoreV1().Pods(nodeNamespace).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		got, err := WaitForPod(ctx, client, nodeNamespace, pod.Name, time.Minute, PodRunning())
		if err != nil {
			t.Fatal(err)
		}
		if !hostNetwork {
			left = append(left, filepath.Join(leases, smokeNetwork, got.Status.PodIP))
		}
	}
	start := time.Now()
	node.Stop()
	t.Logf("node stopped with two pods running in %v", time.Since(start).Round(time.Millisecond))
	for _, lease := range left {
		if _, err := os.Stat(lease); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("host-local lease of a pod running at Stop: got %v, want it released", err)
		}
	}
	if pids := processesWith(node.Socket()); len(pids) > 0 {
		t.Errorf("processes still using the node's containerd socket after Stop: %v", pids)
	}
}

func pausePod(name string, hostNetwork bool) *corev1.Pod {
	grace := int64(5)
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: nodeNamespace},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name: "pause", Image: PauseImage, ImagePullPolicy: corev1.PullNever,
			}},
			HostNetwork:                   hostNetwork,
			TerminationGracePeriodSeconds: &grace,
		},
	}
}

// testSmokePod runs a pod on the bridge network, checks its address and
// lease, deletes it (with grace period 0 if force) and checks the lease is
// released.
func testSmokePod(ctx context.Context, t *testing.T, cp *ControlPlane, node *Node, leases string, force bool) {
	client, _, err := cp.Clients()
	if err != nil {
		t.Fatal(err)
	}
	ns := nodeNamespace
	if err := CreateNamespaceWithSA(ctx, client, ns); err != nil {
		t.Fatal(err)
	}
	pod := pausePod("pause", false)
	start := time.Now()
	if _, err := client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := WaitForPod(ctx, client, ns, pod.Name, time.Minute, PodRunning())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("pod create to Running in %v, IP %s", time.Since(start).Round(time.Millisecond), got.Status.PodIP)
	_, subnet, _ := net.ParseCIDR(smokeSubnet)
	ip := net.ParseIP(got.Status.PodIP)
	if !subnet.Contains(ip) {
		t.Fatalf("pod IP %q is not in the bridge subnet %s", got.Status.PodIP, smokeSubnet)
	}
	lease := filepath.Join(leases, smokeNetwork, ip.String())
	if _, err := os.Stat(lease); err != nil {
		t.Errorf("host-local lease of the pod: %v", err)
	}
	// The API server reaches the kubelet (logs, exec) at NodeName on loopback.
	if _, err := client.CoreV1().Pods(ns).GetLogs(pod.Name, &corev1.PodLogOptions{}).DoRaw(ctx); err != nil {
		t.Errorf("get pod logs through the API server: %v", err)
	}

	// A graceful delete ends when the kubelet has stopped the pod, CNI DEL
	// included. With grace period 0 (as DeleteNamespaceObjects deletes) the
	// API object goes at once and CNI DEL comes later.
	start = time.Now()
	if force {
		zero := int64(0)
		err = client.CoreV1().Pods(ns).Delete(ctx, pod.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
	} else {
		err = client.CoreV1().Pods(ns).Delete(ctx, pod.Name, metav1.DeleteOptions{})
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := WaitForPodGone(ctx, client, ns, pod.Name, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := node.WaitPodNetworkGone(ctx, got.UID, time.Minute); err != nil {
		t.Fatal(err)
	}
	t.Logf("pod delete (force %v) to pod network gone in %v", force, time.Since(start).Round(time.Millisecond))
	if _, err := os.Stat(lease); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("host-local lease once the pod network is gone: got %v, want it released", err)
	}
}

func testNodeRestart(ctx context.Context, t *testing.T, what string, restart func(context.Context) error) {
	start := time.Now()
	if err := restart(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s restarted, node ready in %v", what, time.Since(start).Round(time.Millisecond))
}

// requirePlugins returns the paths of reference CNI plugins in bin/plugins,
// skipping the test (failing it with CI=true) when one is missing.
func requirePlugins(t *testing.T, names ...string) map[string]string {
	t.Helper()
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	paths := map[string]string{}
	var errs []error
	for _, name := range names {
		paths[name] = filepath.Join(root, "bin", "plugins", name)
		errs = append(errs, checkExecutable(name, paths[name]))
	}
	if err := errors.Join(errs...); err != nil {
		if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
			t.Fatalf("CNI plugins missing with CI=true: %v", err)
		}
		t.Skipf("CNI plugins missing (run `make tools`): %v", err)
	}
	return paths
}

// installBridgeNetwork installs the plugins into the node's CNI bin
// directory and a conflist for bridge (named bridge) + host-local (leases
// under leases) into its conf directory. The node's Stop restores both directories. No
// gateway and no masquerading: the bridge plugin would otherwise enable IP
// forwarding and add iptables rules.
func installBridgeNetwork(t *testing.T, plugins map[string]string, bridge, leases string) {
	t.Helper()
	for name, path := range plugins {
		if err := copyFile(path, filepath.Join(cniBinDir, name), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	conf := fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": %q,
  "plugins": [{
    "type": "bridge", "bridge": %q, "isGateway": false, "ipMasq": false,
    "ipam": {"type": "host-local", "dataDir": %q, "ranges": [[{"subnet": %q}]]}
  }]
}`, smokeNetwork, bridge, leases, smokeSubnet)
	if err := os.WriteFile(filepath.Join(cniConfDir, "10-node-smoke.conflist"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
}

// processesWith returns the pids of processes whose command line mentions s.
func processesWith(s string) []string {
	paths, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	var pids []string
	for _, path := range paths {
		if data, err := os.ReadFile(path); err == nil && strings.Contains(string(data), s) {
			pids = append(pids, filepath.Base(filepath.Dir(path)))
		}
	}
	return pids
}

// deleteLink deletes the bridge the bridge plugin created: its DEL leaves
// the bridge behind by design.
func deleteLink(t *testing.T, name string) {
	link, err := netlink.LinkByName(name)
	if err != nil {
		return // never created
	}
	if err := netlink.LinkDel(link); err != nil {
		t.Errorf("delete link %s: %v", name, err)
	}
}

// TestBuildImage reads back a docker-archive BuildImage wrote: manifest,
// config and a layer with the files and their parent directories.
func TestBuildImage(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "tool")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	path, err := BuildImage(dir, "braid.local/tool:v1", map[string]string{"/usr/bin/tool": bin, "/etc/tool.conf": bin}, []string{"/usr/bin/tool", "-v"})
	if err != nil {
		t.Fatal(err)
	}
	archive := readTar(t, mustOpen(t, path))
	var manifest []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	if err := json.Unmarshal(archive["manifest.json"], &manifest); err != nil {
		t.Fatal(err)
	}
	if len(manifest) != 1 || len(manifest[0].Layers) != 1 || !slices.Equal(manifest[0].RepoTags, []string{"braid.local/tool:v1"}) {
		t.Fatalf("manifest.json = %+v, want one image tagged braid.local/tool:v1 with one layer", manifest)
	}
	var config struct {
		Architecture, OS string
		Config           struct{ Entrypoint []string }
		RootFS           struct {
			DiffIDs []string `json:"diff_ids"`
		}
	}
	if err := json.Unmarshal(archive[manifest[0].Config], &config); err != nil {
		t.Fatal(err)
	}
	layer := archive[manifest[0].Layers[0]]
	sum := sha256.Sum256(layer)
	if want := []string{"sha256:" + hex.EncodeToString(sum[:])}; !slices.Equal(config.RootFS.DiffIDs, want) {
		t.Errorf("diff_ids = %v, want %v", config.RootFS.DiffIDs, want)
	}
	if config.OS != "linux" || config.Architecture != runtime.GOARCH || !slices.Equal(config.Config.Entrypoint, []string{"/usr/bin/tool", "-v"}) {
		t.Errorf("config = %+v, want linux/%s with entrypoint [/usr/bin/tool -v]", config, runtime.GOARCH)
	}
	var names []string
	tr := tar.NewReader(bytes.NewReader(layer))
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, fmt.Sprintf("%s %o", hdr.Name, hdr.Mode))
	}
	want := []string{"etc/ 755", "etc/tool.conf 755", "usr/ 755", "usr/bin/ 755", "usr/bin/tool 755"}
	if !slices.Equal(names, want) {
		t.Errorf("layer entries = %q, want %q", names, want)
	}
}

func mustOpen(t *testing.T, path string) io.Reader {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.NewReader(data)
}

// readTar returns the regular files of a tar by name.
func readTar(t *testing.T, r io.Reader) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Typeflag == tar.TypeReg {
			if files[hdr.Name], err = io.ReadAll(tr); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestSaveDirRestore saves an existing directory and a missing one the way
// StartNode saves the CNI directories, changes both, and restores them.
func TestSaveDirRestore(t *testing.T) {
	tmp := t.TempDir()
	existing := filepath.Join(tmp, "etc", "net.d")
	if err := os.MkdirAll(filepath.Join(existing, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{"10-a.conflist": "a", "sub/b": "b"}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(existing, name), []byte(data), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("10-a.conflist", filepath.Join(existing, "link")); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(tmp, "opt", "cni", "bin")
	h := &hostState{sysctls: map[string]string{}, saved: map[string]string{}}
	for i, dir := range []string{existing, missing} {
		if err := h.saveDir(dir, filepath.Join(tmp, "backup", strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(missing); err != nil {
		t.Fatalf("saveDir must create the missing directory: %v", err)
	}
	// What a DaemonSet would do meanwhile.
	for _, path := range []string{filepath.Join(existing, "00-braid.conflist"), filepath.Join(missing, "braid")} {
		if err := os.WriteFile(path, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Remove(filepath.Join(existing, "sub", "b")); err != nil {
		t.Fatal(err)
	}

	if err := h.restore(); err != nil {
		t.Fatal(err)
	}
	for name, want := range files {
		path := filepath.Join(existing, name)
		data, err := os.ReadFile(path)
		if err != nil || string(data) != want {
			t.Errorf("%s after restore: %q, %v; want %q", name, data, err, want)
		}
		if info, err := os.Stat(path); err == nil && info.Mode().Perm() != 0o640 {
			t.Errorf("%s mode after restore = %v, want 0640", name, info.Mode().Perm())
		}
	}
	if link, err := os.Readlink(filepath.Join(existing, "link")); err != nil || link != "10-a.conflist" {
		t.Errorf("link after restore: %q, %v; want 10-a.conflist", link, err)
	}
	if _, err := os.Stat(filepath.Join(existing, "00-braid.conflist")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("file added meanwhile: got %v, want it removed", err)
	}
	if _, err := os.Stat(filepath.Join(tmp, "opt")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s, created for the missing directory: got %v, want it removed", filepath.Join(tmp, "opt"), err)
	}
}

// TestRestoreWithoutBackup restores a saved directory whose backup is gone,
// as after a crash when something removed the node's working directory: the
// directory must stay as it is and the error must name it.
func TestRestoreWithoutBackup(t *testing.T) {
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "net.d")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "10-a.conflist"), []byte("a"), 0o644); err != nil {
		t.Fatal(err)
	}
	h := &hostState{saved: map[string]string{dir: filepath.Join(tmp, "backup", "0")}}
	err := h.restore()
	if err == nil || !strings.Contains(err.Error(), dir) {
		t.Errorf("restore() = %v, want an error naming %s", err, dir)
	}
	if _, err := os.Stat(filepath.Join(dir, "10-a.conflist")); err != nil {
		t.Errorf("directory without a backup must stay as it is: %v", err)
	}
}

// importPause builds the pause image and imports it into the node.
func importPause(t *testing.T, node *Node) {
	t.Helper()
	image, err := BuildPauseImage(t.Context(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := node.ImportImage(t.Context(), image); err != nil {
		t.Fatal(err)
	}
}
