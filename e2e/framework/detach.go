package framework

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"

	"k8s.io/client-go/kubernetes"
)

// ControlPlaneState is what a process needs to use and stop a control plane
// another process started with Options.Detach: ports, credentials, binaries
// and processes. It holds the admin token: store it readable by root only.
type ControlPlaneState struct {
	WorkDir         string `json:"workDir"`
	OwnsWorkDir     bool   `json:"ownsWorkDir"`
	EtcdURL         string `json:"etcdURL"`
	SecurePort      int    `json:"securePort"`
	ControllerPorts [2]int `json:"controllerPorts"`
	AdminToken      string `json:"adminToken"`
	BraidToken      string `json:"braidToken"`
	CAData          []byte `json:"caData"`

	APIServerPath         string `json:"apiServerPath"`
	EtcdPath              string `json:"etcdPath"`
	ControllerManagerPath string `json:"controllerManagerPath,omitempty"`
	SchedulerPath         string `json:"schedulerPath,omitempty"`
	Controllers           bool   `json:"controllers"`
	AuditLog              string `json:"auditLog,omitempty"`

	Etcd              *ProcessState `json:"etcd,omitempty"`
	APIServer         *ProcessState `json:"apiServer,omitempty"`
	ControllerManager *ProcessState `json:"controllerManager,omitempty"`
	Scheduler         *ProcessState `json:"scheduler,omitempty"`
}

// State records the control plane for AttachControlPlane. Only a control
// plane started with Options.Detach outlives this process.
func (cp *ControlPlane) State() ControlPlaneState {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	return ControlPlaneState{
		WorkDir: cp.workDir, OwnsWorkDir: cp.ownsWorkDir, EtcdURL: cp.etcdURL, SecurePort: cp.securePort,
		ControllerPorts: cp.controllerPorts, AdminToken: cp.tokens.admin, BraidToken: cp.tokens.braid,
		CAData:        slices.Clone(cp.caData),
		APIServerPath: cp.opts.APIServerPath, EtcdPath: cp.opts.EtcdPath, Controllers: cp.opts.Controllers,
		ControllerManagerPath: cp.opts.ControllerManagerPath, SchedulerPath: cp.opts.SchedulerPath, AuditLog: cp.opts.AuditLog,
		Etcd: cp.etcd.state(), APIServer: cp.apiserver.state(),
		ControllerManager: cp.controllerManager.state(), Scheduler: cp.scheduler.state(),
	}
}

// AttachControlPlane returns the control plane st describes, started by
// another process with Options.Detach. Its processes need not run any more:
// Stop stops those that still do (identified by PID and start time, never
// by name) and removes the working directory if it was a temporary one.
// Processes it starts again (StartAPIServer) are detached as well. Problems
// go to log; nil discards them.
func AttachControlPlane(st ControlPlaneState, log io.Writer) (*ControlPlane, error) {
	if st.WorkDir == "" || st.SecurePort == 0 || st.AdminToken == "" {
		return nil, errors.New("attach control plane: state lacks the working directory, port or admin token")
	}
	if log == nil {
		log = io.Discard
	}
	opts := Options{
		WorkDir: st.WorkDir, APIServerPath: st.APIServerPath, EtcdPath: st.EtcdPath, Controllers: st.Controllers,
		ControllerManagerPath: st.ControllerManagerPath, SchedulerPath: st.SchedulerPath, AuditLog: st.AuditLog,
		Detach: true, Log: log,
	}
	return &ControlPlane{
		opts: opts, log: slog.New(slog.NewTextHandler(log, nil)), workDir: st.WorkDir, ownsWorkDir: st.OwnsWorkDir,
		etcdURL: st.EtcdURL, securePort: st.SecurePort, controllerPorts: st.ControllerPorts,
		tokens: tokens{admin: st.AdminToken, braid: st.BraidToken}, caData: st.CAData,
		etcd: attachProcess(st.Etcd), apiserver: attachProcess(st.APIServer),
		controllerManager: attachProcess(st.ControllerManager), scheduler: attachProcess(st.Scheduler),
	}, nil
}

// HostState is what a node changed on the host and Stop puts back.
type HostState struct {
	// Sysctls maps /proc/sys paths to their values before the node.
	Sysctls map[string]string `json:"sysctls"`
	// Created are paths that did not exist before the node; Stop removes
	// them.
	Created []string `json:"created"`
	// Saved maps the host directories that existed (the CNI ones) to the
	// backup copy Stop restores them from.
	Saved map[string]string `json:"saved"`
}

// NodeState is what a process needs to stop a node another process started
// with NodeOptions.Detach, and to put the host back as that one's Stop would.
type NodeState struct {
	WorkDir       string `json:"workDir"`
	OwnsWorkDir   bool   `json:"ownsWorkDir"`
	ContainerdDir string `json:"containerdDir"`
	Socket        string `json:"socket"`
	Snapshotter   string `json:"snapshotter"`
	KubeletPorts  [2]int `json:"kubeletPorts"`

	KubeletPath         string `json:"kubeletPath"`
	ContainerdPath      string `json:"containerdPath"`
	CtrPath             string `json:"ctrPath"`
	LoopbackPath        string `json:"loopbackPath"`
	SandboxImage        string `json:"sandboxImage"`
	MaxPods             int    `json:"maxPods"`
	ReadyWithoutNetwork bool   `json:"readyWithoutNetwork"`

	// HostBefore is the host as StartNode found it, which Stop compares the
	// host with once it put it back.
	HostBefore []string   `json:"hostBefore"`
	Host       *HostState `json:"host,omitempty"`

	Containerd *ProcessState `json:"containerd,omitempty"`
	Kubelet    *ProcessState `json:"kubelet,omitempty"`
}

// State records the node for AttachNode. Only a node started with
// NodeOptions.Detach outlives this process.
func (n *Node) State() NodeState {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.state()
}

// state is State for a caller that holds n.mu or is n's only user.
func (n *Node) state() NodeState {
	return NodeState{
		WorkDir: n.workDir, OwnsWorkDir: n.ownsWorkDir, ContainerdDir: n.containerdDir, Socket: n.socket,
		Snapshotter: n.snapshotter, KubeletPorts: n.kubeletPorts,
		KubeletPath: n.opts.KubeletPath, ContainerdPath: n.opts.ContainerdPath, CtrPath: n.opts.CtrPath,
		LoopbackPath: n.opts.LoopbackPath, SandboxImage: n.opts.SandboxImage, MaxPods: n.opts.MaxPods,
		ReadyWithoutNetwork: n.opts.ReadyWithoutNetwork,
		HostBefore:          slices.Clone(n.hostBefore),
		Host:                n.host.state(),
		Containerd:          n.containerd.state(), Kubelet: n.kubelet.state(),
	}
}

// AttachNode returns the node st describes, started by another process with
// NodeOptions.Detach and registered with cp (see AttachControlPlane). Its
// processes need not run any more. It takes the host lock over from the
// node's kubelet while that runs, else it waits for the lock as StartNode
// does (ctx bounds the wait), so Stop puts the host back and compares it with
// HostBefore as the starting process's Stop would. Problems go to log; nil
// discards them.
func AttachNode(ctx context.Context, cp *ControlPlane, st NodeState, log io.Writer) (*Node, error) {
	if st.WorkDir == "" || st.Socket == "" || st.CtrPath == "" {
		return nil, errors.New("attach node: state lacks the working directory, containerd socket or ctr path")
	}
	n := nodeFromState(st, log)
	n.cp = cp
	var err error
	if n.client, err = kubernetes.NewForConfig(cp.AdminConfig()); err != nil {
		return nil, fmt.Errorf("attach node: %w", err)
	}
	if n.lock, err = n.adoptLock(ctx); err != nil {
		return nil, fmt.Errorf("attach node: %w", err)
	}
	return n, nil
}

// nodeFromState returns the node st describes, without a control plane,
// client or host lock. Its processes, if they still run, are detached ones.
func nodeFromState(st NodeState, log io.Writer) *Node {
	if log == nil {
		log = io.Discard
	}
	opts := NodeOptions{
		WorkDir: st.WorkDir, KubeletPath: st.KubeletPath, ContainerdPath: st.ContainerdPath, CtrPath: st.CtrPath,
		LoopbackPath: st.LoopbackPath, SandboxImage: st.SandboxImage, MaxPods: st.MaxPods,
		ReadyWithoutNetwork: st.ReadyWithoutNetwork, Detach: true, Log: log,
	}
	return &Node{
		opts: opts, log: slog.New(slog.NewTextHandler(log, nil)), workDir: st.WorkDir, ownsWorkDir: st.OwnsWorkDir,
		containerdDir: st.ContainerdDir, socket: st.Socket, snapshotter: st.Snapshotter, kubeletPorts: st.KubeletPorts,
		hostBefore: slices.Clone(st.HostBefore), host: attachHost(st.Host),
		containerd: attachProcess(st.Containerd), kubelet: attachProcess(st.Kubelet),
	}
}

// adoptLock takes the host lock over from the kubelet, which a detached
// node's kubelet holds (kubeletProcOptions); once the kubelet is gone, the
// lock is free unless another node took it, and is taken as StartNode takes
// it.
func (n *Node) adoptLock(ctx context.Context) (*os.File, error) {
	if n.kubelet != nil && !n.kubelet.exited() {
		return dupLock(n.kubelet.id.PID, HostLockPath())
	}
	return lockHost(ctx, n.log)
}

// HostLockPath is the file a node holds its host lock on while it runs
// (see StartNode), in this process or, detached, in its kubelet.
func HostLockPath() string {
	return filepath.Join(os.TempDir(), hostLockName)
}

// kubeletProcOptions starts a detached node's kubelet with the host lock as
// its fd 3: the kubelet holds the lock for as long as it runs, after the
// process that started it has exited, and AttachNode takes it over.
func (n *Node) kubeletProcOptions() procOptions {
	opts := procOptions{detach: n.opts.Detach}
	if n.opts.Detach && n.lock != nil {
		opts.extra = []*os.File{n.lock}
	}
	return opts
}
