package framework

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"
)

const (
	// PauseImage is the node's default sandbox image. Nothing pulls it: import
	// it (BuildPauseImage, ImportImage) before the first pod.
	PauseImage = "braid.local/pause:e2e"

	kubeletEnv         = "BRAID_KUBELET"
	containerdEnv      = "BRAID_CONTAINERD"
	loopbackEnv        = "BRAID_CNI_LOOPBACK"
	defaultMaxPods     = 16
	containerdGrace    = 10 * time.Second
	kubeletGrace       = 10 * time.Second
	podTeardownTimeout = 60 * time.Second
)

var errNodeStopped = errors.New("node stopped")

// NodeOptions configures StartNode. The zero value is usable.
type NodeOptions struct {
	// WorkDir holds containerd's root, state and socket, the kubelet's
	// config, the logs (containerd.log, kubelet.log) and the backup of the
	// host's CNI directories. When empty, a temporary directory is created and
	// removed again by Stop.
	WorkDir string
	// KubeletPath defaults to $BRAID_KUBELET, then to bin/kubelet in the
	// repository root (see `make tools`).
	KubeletPath string
	// ContainerdPath defaults to $BRAID_CONTAINERD, then to bin/containerd
	// in the repository root: containerd 2 (see `make tools`);
	// BRAID_CONTAINERD=/usr/bin/containerd runs Debian's containerd 1.6.
	// The runc shim (containerd-shim-runc-v2) must be next to it, and
	// CtrPath defaults to the ctr next to it. runc must be on PATH.
	ContainerdPath string
	CtrPath        string
	// LoopbackPath is the CNI loopback plugin, which containerd runs for the
	// lo of every sandbox with a pod network, as a runtime package would
	// ship it: StartNode copies it into /opt/cni/bin unless one is there.
	// Defaults to $BRAID_CNI_LOOPBACK, then to bin/plugins/loopback in the
	// repository root.
	LoopbackPath string
	// SandboxImage defaults to PauseImage.
	SandboxImage string
	// MaxPods defaults to 16.
	MaxPods int
	// ReadyWithoutNetwork makes StartNode and the restarts return once the
	// node is ready but for its network, as when no CNI config is installed
	// yet (a DaemonSet will install it). WaitReady waits for the rest.
	ReadyWithoutNetwork bool
	// Detach starts containerd and the kubelet in sessions of their own and
	// without a parent-death signal, so that the node outlives this Go
	// process; the kubelet then also holds the host lock (see lockHost).
	// Record State, and a second process stops the node with AttachNode
	// and Stop. Without it the node dies with the process that started it.
	Detach bool
	// Log receives the framework's own progress messages; nil discards them.
	Log io.Writer
}

// Resolve fills in the defaults of o and checks that the binaries exist. The
// error names every missing binary.
func (o NodeOptions) Resolve() (NodeOptions, error) {
	var err error
	if o.KubeletPath, err = binaryPath(o.KubeletPath, kubeletEnv, "kubelet"); err != nil {
		return o, err
	}
	if o.LoopbackPath, err = binaryPath(o.LoopbackPath, loopbackEnv, filepath.Join("plugins", "loopback")); err != nil {
		return o, err
	}
	if o.ContainerdPath, err = binaryPath(o.ContainerdPath, containerdEnv, "containerd"); err != nil {
		return o, err
	}
	if o.CtrPath == "" {
		o.CtrPath = filepath.Join(filepath.Dir(o.ContainerdPath), "ctr")
	}
	if o.SandboxImage == "" {
		o.SandboxImage = PauseImage
	}
	if o.MaxPods == 0 {
		o.MaxPods = defaultMaxPods
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	return o, errors.Join(checkExecutable("kubelet", o.KubeletPath), checkExecutable("containerd", o.ContainerdPath),
		checkExecutable("containerd shim", filepath.Join(filepath.Dir(o.ContainerdPath), shimName)),
		checkExecutable("ctr", o.CtrPath), checkOnPath("runc"), checkExecutable("CNI loopback", o.LoopbackPath))
}

// Node is a kubelet with containerd, registered as NodeName with a control
// plane started with Options.Controllers. It changes the host: it runs pods
// through the real CNI directories, and the kubelet sets sysctls and writes
// under /var; Stop puts all of that back. One node runs per host at a time:
// StartNode waits (bounded by its ctx) while another one runs, in this test
// binary or another.
type Node struct {
	opts          NodeOptions
	cp            *ControlPlane
	client        kubernetes.Interface
	log           *slog.Logger
	workDir       string
	ownsWorkDir   bool
	containerdDir string
	socket        string
	snapshotter   string
	kubeletPorts  [2]int   // serving, healthz
	lock          *os.File // see lockHost
	hostBefore    []string // snapshotHost before the node changed anything
	host          *hostState

	// containerdMajor is the major version of ContainerdPath's containerd,
	// which picks its config's version.
	containerdMajor int

	mu         sync.Mutex
	containerd *process
	kubelet    *process
}

// StartNode saves the host state the node changes, starts containerd, then
// the kubelet, and returns once the node is Ready (see
// NodeOptions.ReadyWithoutNetwork). ctx bounds the start-up only.
//
// The node keeps a record of what it changed next to the host lock until
// Stop has put the host back. If a node before it ended without Stop (its
// process was killed), StartNode first undoes that node as the record says,
// and logs what it did; if it cannot, it fails with what is left to clean.
func StartNode(ctx context.Context, cp *ControlPlane, opts NodeOptions) (_ *Node, err error) {
	if opts, err = opts.Resolve(); err != nil {
		return nil, fmt.Errorf("start node: %w", err)
	}
	start := time.Now()
	n := &Node{opts: opts, cp: cp, log: slog.New(slog.NewTextHandler(opts.Log, nil)), workDir: opts.WorkDir}
	if n.client, err = kubernetes.NewForConfig(cp.AdminConfig()); err != nil {
		return nil, fmt.Errorf("start node: %w", err)
	}
	if n.workDir == "" {
		if n.workDir, err = os.MkdirTemp("", "braid-node-"); err != nil {
			return nil, fmt.Errorf("start node: %w", err)
		}
		n.ownsWorkDir = true
	}
	defer func() {
		if err != nil {
			n.Stop()
		}
	}()
	if n.lock, err = lockHost(ctx, n.log); err != nil {
		return nil, fmt.Errorf("start node: %w", err)
	}
	if err := n.recoverHost(ctx); err != nil {
		return nil, fmt.Errorf("start node: %w", err)
	}
	n.hostBefore = snapshotHost()
	if err := n.prepare(ctx); err != nil {
		return nil, fmt.Errorf("start node: %w", err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.startContainerd(ctx); err != nil {
		return nil, fmt.Errorf("start node: %w", err)
	}
	n.log.Info("containerd ready", "path", n.opts.ContainerdPath, "major", n.containerdMajor, "snapshotter", n.snapshotter,
		"elapsed", time.Since(start).Round(time.Millisecond))
	if err := n.startKubelet(ctx); err != nil {
		return nil, fmt.Errorf("start node: %w", err)
	}
	n.log.Info("node ready", "name", NodeName, "workDir", n.workDir, "elapsed", time.Since(start).Round(time.Millisecond))
	return n, nil
}

// prepare saves the host state and writes the configs.
func (n *Node) prepare(ctx context.Context) error {
	n.containerdDir = filepath.Join(n.workDir, "containerd")
	n.socket = filepath.Join(n.containerdDir, "containerd.sock")
	var err error
	if n.containerdMajor, err = containerdMajor(ctx, n.opts.ContainerdPath); err != nil {
		return err
	}
	if err := os.MkdirAll(n.containerdDir, 0o700); err != nil {
		return err
	}
	ports, err := freePorts(2)
	if err != nil {
		return err
	}
	n.kubeletPorts = [2]int{ports[0], ports[1]}
	// Even on error, host holds what to undo, and so does the record.
	var saveErr error
	n.host, saveErr = saveHost(filepath.Join(n.workDir, "host-backup"))
	if err := errors.Join(saveErr, n.writeRecord()); err != nil {
		return err
	}
	if err := installLoopback(n.opts.LoopbackPath); err != nil {
		return err
	}
	n.snapshotter = pickSnapshotter(n.containerdDir)
	if err := os.WriteFile(filepath.Join(n.containerdDir, "config.toml"), []byte(n.containerdConfig()), 0o600); err != nil {
		return err
	}
	return n.writeKubeletFiles()
}

// installLoopback copies the loopback plugin into the CNI bin directory,
// unless one is there: without it containerd fails every pod network.
func installLoopback(path string) error {
	dst := filepath.Join(cniBinDir, "loopback")
	if _, err := os.Stat(dst); err == nil {
		return nil
	}
	if err := copyFile(path, dst, 0o755); err != nil {
		return fmt.Errorf("install CNI loopback plugin: %w", err)
	}
	return nil
}

// WorkDir is the directory holding the node's state, configs and logs.
func (n *Node) WorkDir() string {
	return n.workDir
}

// Socket is containerd's socket, for ctr or crictl.
func (n *Node) Socket() string {
	return n.socket
}

// RestartKubelet stops the kubelet and starts it again with the same
// config, then waits as StartNode does. Pods keep running meanwhile.
func (n *Node) RestartKubelet(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.kubelet == nil {
		return errNodeStopped
	}
	if err := n.kubelet.stop(kubeletGrace); err != nil {
		return fmt.Errorf("restart kubelet: %w", err)
	}
	if err := n.startKubelet(ctx); err != nil {
		return fmt.Errorf("restart kubelet: %w", err)
	}
	return nil
}

// RestartContainerd stops containerd and starts it again with the same
// config; containers keep running in their shims, as with a real restart.
// It waits until the CRI plugin is up and the node is Ready again (the
// kubelet reconnects by itself).
func (n *Node) RestartContainerd(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.containerd == nil {
		return errNodeStopped
	}
	if err := n.containerd.stop(containerdGrace); err != nil {
		return fmt.Errorf("restart containerd: %w", err)
	}
	if err := n.startContainerd(ctx); err != nil {
		return fmt.Errorf("restart containerd: %w", err)
	}
	if err := n.waitNode(ctx, time.Time{}, n.opts.ReadyWithoutNetwork); err != nil {
		return fmt.Errorf("restart containerd: %w", err)
	}
	return nil
}

// Logs returns the last lines of containerd's and the kubelet's logs, for
// failure reports.
func (n *Node) Logs(tail int) string {
	var out string
	for _, name := range []string{"containerd.log", "kubelet.log"} {
		out += fmt.Sprintf("==> %s <==\n%s\n", name, tailFile(filepath.Join(n.workDir, name), tail))
	}
	return out
}
