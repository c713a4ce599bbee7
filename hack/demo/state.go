package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/braid-cni/braid/e2e/framework"
)

const (
	// stateDir holds the state file, the admin kubeconfig and the work
	// directories of the control plane and the node. It is on disk rather
	// than under /run: after a reboot the processes are gone, but the host's
	// CNI directories still hold the demo's and only the backup here can put
	// them back.
	stateDir   = "/var/lib/braid-demo"
	ipForward  = "/proc/sys/net/ipv4/ip_forward"
	clusterNet = "braid-cni0"
	// macvlanMaster stands in for the host NIC named in
	// examples/nad-macvlan.yaml; macvlanPeer is the other end of its veth.
	macvlanMaster = "braid-demo0"
	macvlanPeer   = "braid-demo1"
)

// demoLinks are the host links of a demo: the bridges of the cluster
// network and of the example NADs, which their plugins create, and the veth
// the demo creates. `demo up` refuses to start while one exists.
func demoLinks() []string {
	return []string{clusterNet, "br-blue", "br-green", macvlanMaster}
}

// hostDirs are written on the host by braid (framework.BraidHostDirs: its
// journal, braidd's socket and NAD config directories, device-info) and the
// example networks at their default paths: host-local's leases of the
// example NADs, the tuning plugin's saved settings and containerd's netns
// mounts. The demo removes those that did not exist before it.
func hostDirs() []string {
	return append(framework.BraidHostDirs(), "/var/lib/cni/networks/blue", "/var/lib/cni/networks/green",
		"/run/cni/tuning", "/run/netns")
}

func statePath() string      { return filepath.Join(stateDir, "state.json") }
func kubeconfigPath() string { return filepath.Join(stateDir, "admin.kubeconfig") }
func workPath(elem ...string) string {
	return filepath.Join(append([]string{stateDir, "work"}, elem...)...)
}

// demoState is what `demo down` needs, written by `demo up` as soon as
// there is something to undo. It holds the admin token: mode 0600.
type demoState struct {
	Started      time.Time                    `json:"started"`
	Mode         framework.Mode               `json:"mode"`
	ControlPlane *framework.ControlPlaneState `json:"controlPlane,omitempty"`
	Node         *framework.NodeState         `json:"node,omitempty"`
	// Pods are the example pods, as namespace/name.
	Pods []string `json:"pods,omitempty"`
	// NewDirs are the topmost missing ancestors of hostDirs before the demo.
	NewDirs []string `json:"newDirs,omitempty"`
	// IPForward is net.ipv4.ip_forward before the demo: the bridge plugin
	// turns it on for a gateway bridge.
	IPForward string `json:"ipForward"`
	// RootShared: the demo made / a shared mount for braidd (see
	// framework.ShareRoot); down makes it private again.
	RootShared bool `json:"rootShared,omitempty"`
}

func loadState() (*demoState, error) {
	data, err := os.ReadFile(statePath())
	if err != nil {
		return nil, err
	}
	var st demoState
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("decode demo state %s: %w", statePath(), err)
	}
	if st.Mode == "" {
		st.Mode = framework.Thin // written before the demo had modes
	}
	return &st, nil
}

// save writes the state with the control plane's and node's current state,
// through a temporary file so a crash never leaves half of it.
func (d *demo) save() error {
	if d.cp != nil {
		s := d.cp.State()
		d.st.ControlPlane = &s
	}
	if d.node != nil {
		s := d.node.State()
		d.st.Node = &s
	}
	data, err := json.MarshalIndent(d.st, "", "  ")
	if err != nil {
		return fmt.Errorf("encode demo state: %w", err)
	}
	tmp := statePath() + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("write demo state %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, statePath()); err != nil {
		return fmt.Errorf("write demo state %s: %w", statePath(), err)
	}
	return nil
}

// recordHost creates the state directory and records what the demo will
// change on the host besides what the node records itself.
func (d *demo) recordHost() error {
	if err := os.MkdirAll(workPath(), 0o700); err != nil {
		return fmt.Errorf("create %s: %w", workPath(), err)
	}
	for _, dir := range hostDirs() {
		// blue's and green's leases may share a missing ancestor.
		if top := framework.TopMissing(dir); top != "" && !slices.Contains(d.st.NewDirs, top) {
			d.st.NewDirs = append(d.st.NewDirs, top)
		}
	}
	data, err := os.ReadFile(ipForward)
	if err != nil {
		return fmt.Errorf("read %s: %w", ipForward, err)
	}
	d.st.IPForward = strings.TrimSpace(string(data))
	return d.save()
}
