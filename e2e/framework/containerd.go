package framework

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
)

// criNamespace is the containerd namespace the CRI plugin keeps pods and
// images in.
const criNamespace = "k8s.io"

// pickSnapshotter returns overlayfs when an overlay mount works in dir, as
// containerd's overlayfs snapshotter needs, and native otherwise.
func pickSnapshotter(dir string) string {
	base := filepath.Join(dir, "overlay-check")
	defer os.RemoveAll(base)
	var paths []string
	for _, d := range []string{"lower", "upper", "work", "merged"} {
		p := filepath.Join(base, d)
		if err := os.MkdirAll(p, 0o700); err != nil {
			return "native"
		}
		paths = append(paths, p)
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", paths[0], paths[1], paths[2])
	if err := syscall.Mount("overlay", paths[3], "overlay", 0, opts); err != nil {
		return "native"
	}
	if err := syscall.Unmount(paths[3], 0); err != nil {
		return "native"
	}
	return "overlayfs"
}

// startContainerd starts containerd with the node's config and waits until
// its CRI plugin is up.
func (n *Node) startContainerd(ctx context.Context) error {
	_ = os.Remove(n.socket) // left by a killed containerd, it would make the wait below pass too early
	p, err := startProcess("containerd", filepath.Join(n.workDir, "containerd.log"),
		[]string{n.opts.ContainerdPath, "--config", filepath.Join(n.containerdDir, "config.toml")}, procOptions{detach: n.opts.Detach})
	if err != nil {
		return err
	}
	n.containerd = p
	if err := n.writeRecord(); err != nil {
		return err
	}
	var lastErr error
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, readyTimeout, true, func(ctx context.Context) (bool, error) {
		if p.exited() {
			return false, errors.New("containerd exited")
		}
		lastErr = n.criPluginOK(ctx)
		return lastErr == nil, nil
	})
	if err != nil {
		return fmt.Errorf("wait for containerd at %s: %w (last check: %v); last lines of containerd.log:\n%s",
			n.socket, err, lastErr, p.tail(30))
	}
	return nil
}

// criPluginOK checks that the CRI plugin loaded: a bad config makes only
// that plugin fail, and containerd itself runs on.
func (n *Node) criPluginOK(ctx context.Context) error {
	out, err := n.ctr(ctx, "plugins", "ls")
	if err != nil {
		return err
	}
	for _, line := range strings.Split(string(out), "\n") {
		fields := strings.Fields(line)
		if len(fields) >= 3 && fields[0] == "io.containerd.grpc.v1" && fields[1] == "cri" {
			if status := fields[len(fields)-1]; status != "ok" {
				return fmt.Errorf("CRI plugin status %s", status)
			}
			return nil
		}
	}
	return errors.New("CRI plugin not listed")
}

// ctr runs ctr against the node's containerd in the CRI namespace and
// returns its standard output.
func (n *Node) ctr(ctx context.Context, args ...string) ([]byte, error) {
	argv := append([]string{"--address", n.socket, "--namespace", criNamespace}, args...)
	cmd := exec.CommandContext(ctx, n.opts.CtrPath, argv...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("ctr %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return stdout.Bytes(), nil
}

// ImportImage imports a docker-archive (BuildImage) or OCI image tarball
// into the CRI's image store and unpacks it for the node's snapshotter, so
// pods can use it with imagePullPolicy Never (or IfNotPresent). A docker
// archive is named by its RepoTags; an OCI archive must name its image with a
// full reference in org.opencontainers.image.ref.name (or
// io.containerd.image.name): ctr 1.6 names a bare tag "import-<date>:<tag>".
func (n *Node) ImportImage(ctx context.Context, tarPath string) error {
	if _, err := n.ctr(ctx, "images", "import", "--snapshotter", n.snapshotter, tarPath); err != nil {
		return fmt.Errorf("import image %s: %w", tarPath, err)
	}
	return nil
}

// WaitPodNetworkGone waits, at most timeout, until the pod with this UID
// has no sandbox whose network namespace still exists: containerd removes it
// right after CNI DEL succeeded. Deleting a pod with grace period 0 removes
// the API object at once, before the kubelet has even stopped the pod; wait
// with this before checking what DEL should have cleaned up. The pod must
// have had its sandbox: containerd creates it only after CNI ADD.
func (n *Node) WaitPodNetworkGone(ctx context.Context, uid types.UID, timeout time.Duration) error {
	var up []string
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		var err error
		up, err = n.podNetworks(ctx, fmt.Sprintf(`labels."io.kubernetes.pod.uid"==%s`, uid))
		return err == nil && len(up) == 0, err
	})
	if err != nil {
		return fmt.Errorf("wait for the network of pod %s to go: %w (network namespaces left: %v)", uid, err, up)
	}
	return nil
}

// podNetworks returns the network namespaces of pod sandboxes that still
// exist, that is, of those whose CNI DEL is still to come (containerd 1.6
// stops the sandbox's task first, then runs DEL, then removes the
// namespace). filter, a ctr filter such as labels."key"==value, narrows
// the sandboxes. Host-network sandboxes never reach CNI and have none.
func (n *Node) podNetworks(ctx context.Context, filter ...string) ([]string, error) {
	filters := append([]string{`labels."io.cri-containerd.kind"==sandbox`}, filter...)
	out, err := n.ctr(ctx, "containers", "ls", "-q", strings.Join(filters, ","))
	if err != nil {
		return nil, err
	}
	var netns []string
	for _, id := range strings.Fields(string(out)) {
		path, err := n.netnsPath(ctx, id)
		if err != nil {
			return nil, err
		}
		if _, err := os.Stat(path); path != "" && err == nil {
			netns = append(netns, path)
		}
	}
	return netns, nil
}

// netnsPath returns the network namespace the sandbox's spec joins, "" for
// the host's.
func (n *Node) netnsPath(ctx context.Context, id string) (string, error) {
	out, err := n.ctr(ctx, "containers", "info", "--spec", id)
	if err != nil {
		if strings.Contains(err.Error(), "not found") {
			return "", nil // removed meanwhile
		}
		return "", err
	}
	path, err := specNetns(out)
	if err != nil {
		return "", fmt.Errorf("decode spec of sandbox %s: %w", id, err)
	}
	return path, nil
}

// specNetns returns the network namespace an OCI runtime spec joins, "" for
// none (the host's, or a new one runc creates).
func specNetns(spec []byte) (string, error) {
	var s struct {
		Linux struct {
			Namespaces []struct{ Type, Path string }
		}
	}
	if err := json.Unmarshal(spec, &s); err != nil {
		return "", err
	}
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == "network" {
			return ns.Path, nil
		}
	}
	return "", nil
}

// runningTasks returns the IDs of the tasks in the CRI namespace that have
// not stopped.
func (n *Node) runningTasks(ctx context.Context) (map[string]bool, error) {
	out, err := n.ctr(ctx, "tasks", "ls")
	if err != nil {
		return nil, err
	}
	running := map[string]bool{}
	for _, line := range strings.Split(string(out), "\n")[1:] { // TASK PID STATUS
		if f := strings.Fields(line); len(f) == 3 && f[2] != "STOPPED" {
			running[f[0]] = true
		}
	}
	return running, nil
}

// removeTasks kills and deletes every task left in the CRI namespace, so
// their shims exit; containerd would leave them running. ctr's delete
// --force refuses a running task, hence kill, wait, delete what the CRI
// plugin has not deleted by itself.
func (n *Node) removeTasks(ctx context.Context) error {
	out, err := n.ctr(ctx, "tasks", "ls", "-q")
	if err != nil {
		return err
	}
	ids := strings.Fields(string(out))
	if len(ids) == 0 {
		return nil
	}
	for _, id := range ids {
		_, _ = n.ctr(ctx, "tasks", "kill", "--signal", "SIGKILL", id) // a task that exited meanwhile fails here
	}
	var running map[string]bool
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		running, err = n.runningTasks(ctx)
		return err == nil && len(running) == 0, err
	})
	if err != nil {
		return fmt.Errorf("wait for killed tasks to stop: %w (running: %v)", err, running)
	}
	if out, err = n.ctr(ctx, "tasks", "ls", "-q"); err != nil {
		return err
	}
	var errs []error
	for _, id := range strings.Fields(string(out)) {
		if _, err := n.ctr(ctx, "tasks", "delete", id); err != nil && !strings.Contains(err.Error(), "not found") {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// killShims kills the shims of this node's containerd that are still alive,
// found by the socket address on their command line.
func (n *Node) killShims() error {
	var errs []error
	for _, pid := range findProcesses(func(args []string) bool {
		return strings.HasPrefix(filepath.Base(args[0]), "containerd-shim") && containsPair(args, "-address", n.socket)
	}) {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			errs = append(errs, fmt.Errorf("kill shim %d: %w", pid, err))
		}
	}
	return errors.Join(errs...)
}

// findProcesses returns the PIDs of the processes whose command line
// matches; processes that exit meanwhile are left out.
func findProcesses(match func(args []string) bool) []int {
	paths, _ := filepath.Glob("/proc/[0-9]*/cmdline") // the pattern is valid
	var pids []int
	for _, path := range paths {
		data, err := os.ReadFile(path)
		if err != nil || len(data) == 0 {
			continue // exited meanwhile, or a kernel thread
		}
		if match(strings.Split(strings.TrimSuffix(string(data), "\x00"), "\x00")) {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(path)))
			pids = append(pids, pid)
		}
	}
	return pids
}

func containsPair(args []string, key, value string) bool {
	for i := 0; i+1 < len(args); i++ {
		if args[i] == key && args[i+1] == value {
			return true
		}
	}
	return false
}
