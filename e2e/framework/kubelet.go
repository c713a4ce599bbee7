package framework

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
)

// NodeName is the name the kubelet registers (--hostname-override): the API
// server reaches the kubelet by this host name, on 127.0.0.1.
const NodeName = "localhost"

// kubeletConfig is a KubeletConfiguration for one throw-away node on a
// cgroup v1 host without systemd: served on loopback to anyone (logs and
// exec from the API server need no client certificate), eviction and image
// garbage collection off so a busy test host never loses pods or the pause
// image, pid limits and swap checks off. It is JSON, which the kubelet reads
// as YAML.
func (n *Node) kubeletConfig() map[string]any {
	return map[string]any{
		"apiVersion":         "kubelet.config.k8s.io/v1beta1",
		"kind":               "KubeletConfiguration",
		"address":            "127.0.0.1",
		"port":               n.kubeletPorts[0],
		"readOnlyPort":       0,
		"healthzBindAddress": "127.0.0.1",
		"healthzPort":        n.kubeletPorts[1],
		"authentication": map[string]any{
			"anonymous": map[string]any{"enabled": true},
			"webhook":   map[string]any{"enabled": false},
		},
		"authorization": map[string]any{"mode": "AlwaysAllow"},
		"cgroupDriver":  "cgroupfs",
		// This VM's constraint, not a choice: its host is cgroup v1,
		// which the kubelet refuses from 1.35 on unless told (the
		// override still exists in 1.37).
		"failCgroupV1":             false,
		"cgroupsPerQOS":            true,
		"containerRuntimeEndpoint": "unix://" + n.socket,
		"failSwapOn":               false,
		"evictionHard": map[string]string{
			"memory.available": "0%", "nodefs.available": "0%", "nodefs.inodesFree": "0%",
			"imagefs.available": "0%", "imagefs.inodesFree": "0%",
		},
		"imageGCHighThresholdPercent":   100,
		"imageGCLowThresholdPercent":    99,
		"serializeImagePulls":           false,
		"registerNode":                  true,
		"maxPods":                       n.opts.MaxPods,
		"podPidsLimit":                  -1,
		"resolvConf":                    filepath.Join(n.workDir, "kubelet", "resolv.conf"),
		"volumePluginDir":               filepath.Join(n.workDir, "kubelet", "volume-plugins"),
		"localStorageCapacityIsolation": true,
		// The first status update after registration fails while the
		// kubelet's node informer catches up; at the default 10 s the node
		// would be Ready 10 s late. Changes are posted as they happen,
		// unchanged status once a minute.
		"nodeStatusUpdateFrequency": "1s",
		"nodeStatusReportFrequency": "1m",
		// KUBE-FIREWALL and the canary chains would stay in the host's
		// iptables after the node.
		"makeIPTablesUtilChains": false,
	}
}

// writeKubeletFiles writes the kubelet's config, kubeconfig (the admin's)
// and resolv.conf: pods get no cluster DNS.
func (n *Node) writeKubeletFiles() error {
	dir := filepath.Join(n.workDir, "kubelet")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	cfg, err := json.MarshalIndent(n.kubeletConfig(), "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), cfg, 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "resolv.conf"), []byte("nameserver 127.0.0.1\n"), 0o644); err != nil {
		return err
	}
	return n.cp.WriteKubeconfig(filepath.Join(dir, "kubeconfig"), true)
}

func (n *Node) kubeletArgs() []string {
	dir := filepath.Join(n.workDir, "kubelet")
	return []string{
		n.opts.KubeletPath,
		"--config=" + filepath.Join(dir, "config.json"),
		"--kubeconfig=" + filepath.Join(dir, "kubeconfig"),
		"--hostname-override=" + NodeName,
		"--v=1",
	}
}

// startKubelet starts the kubelet and waits until it reports the node ready
// with a heartbeat from this run.
func (n *Node) startKubelet(ctx context.Context) error {
	since := time.Now()
	p, err := startProcess("kubelet", filepath.Join(n.workDir, "kubelet.log"), n.kubeletArgs(), n.kubeletProcOptions())
	if err != nil {
		return err
	}
	n.kubelet = p
	if err := n.writeRecord(); err != nil {
		return err
	}
	return n.waitNode(ctx, since, n.opts.ReadyWithoutNetwork)
}

// WaitReady waits until the node is Ready, network included: after
// StartNode with ReadyWithoutNetwork, once a CNI config is installed.
func (n *Node) WaitReady(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.kubelet == nil {
		return errNodeStopped
	}
	return n.waitNode(ctx, time.Time{}, false)
}

// waitNode waits until the kubelet answers /healthz and the node's Ready
// condition, heartbeat at or after since, is true; or, with
// withoutNetwork, false only because the runtime's network is not ready (no
// CNI config yet).
func (n *Node) waitNode(ctx context.Context, since time.Time, withoutNetwork bool) error {
	healthz := fmt.Sprintf("http://127.0.0.1:%d/healthz", n.kubeletPorts[1])
	httpClient := &http.Client{Timeout: 2 * time.Second}
	since = since.Truncate(time.Second) // heartbeats have second precision
	var lastErr error
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, readyTimeout, true, func(ctx context.Context) (bool, error) {
		if n.kubelet.exited() {
			return false, errors.New("kubelet exited")
		}
		if lastErr = getOK(ctx, httpClient, healthz); lastErr != nil {
			return false, nil
		}
		node, err := n.client.CoreV1().Nodes().Get(ctx, NodeName, metav1.GetOptions{})
		if err != nil {
			lastErr = err
			return false, nil
		}
		lastErr = nodeReady(node, since, withoutNetwork)
		return lastErr == nil, nil
	})
	if err != nil {
		if apierrors.IsNotFound(lastErr) {
			lastErr = fmt.Errorf("node %s not registered", NodeName)
		}
		return fmt.Errorf("wait for node %s: %w (last check: %v); last lines of kubelet.log:\n%s",
			NodeName, err, lastErr, n.kubelet.tail(30))
	}
	return nil
}

// networkNotReady starts the kubelet's Ready message when the runtime is up
// but has no CNI config; several problems would be listed in brackets.
const networkNotReady = "container runtime network not ready"

func nodeReady(node *corev1.Node, since time.Time, withoutNetwork bool) error {
	for _, c := range node.Status.Conditions {
		if c.Type != corev1.NodeReady {
			continue
		}
		switch {
		case c.LastHeartbeatTime.Time.Before(since):
			return fmt.Errorf("condition Ready=%s is from %v, before this kubelet started", c.Status, c.LastHeartbeatTime.Time)
		case c.Status == corev1.ConditionTrue:
			return nil
		case withoutNetwork && strings.HasPrefix(c.Message, networkNotReady):
			return nil
		default:
			return fmt.Errorf("condition Ready=%s: %s: %s", c.Status, c.Reason, c.Message)
		}
	}
	return errors.New("no Ready condition yet")
}
