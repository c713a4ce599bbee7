package framework

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
)

// Stop tears the node down in the order that keeps the host clean: it
// cordons the node and deletes its pods (grace period 0) until no sandbox's
// network namespace is left, so that CNI DEL runs while the plugin under
// test is still installed; then it stops the
// kubelet, removes the remaining (host-network) tasks, stops containerd,
// unmounts what the kubelet and containerd mounted, removes what they
// created, and restores the sysctls and the CNI directories; then it removes
// the node's record (see StartNode). Problems go to
// NodeOptions.Log as warnings, including any difference between the host's
// state now and before StartNode; Stop is safe to call more than once. Stop
// the node before its control plane.
func (n *Node) Stop() {
	n.mu.Lock()
	defer n.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 2*podTeardownTimeout)
	defer cancel()
	var errs []error
	if n.kubelet != nil && !n.kubelet.exited() && n.containerd != nil && !n.containerd.exited() {
		errs = append(errs, n.deletePods(ctx))
	}
	if n.kubelet != nil {
		errs = append(errs, n.kubelet.stop(kubeletGrace))
		n.kubelet = nil
	}
	if n.containerd != nil {
		if !n.containerd.exited() {
			errs = append(errs, n.removeTasks(ctx))
		}
		errs = append(errs, n.containerd.stop(containerdGrace))
		n.containerd = nil
	}
	if n.socket != "" {
		errs = append(errs, n.killShims())
	}
	if n.host != nil { // else the node never changed the host
		errs = append(errs, unmountUnder(slices.Concat(nodeDirs, []string{n.workDir})...), n.host.restore(), n.removeRecord())
		n.host = nil
	}
	if n.ownsWorkDir {
		errs = append(errs, os.RemoveAll(n.workDir))
		n.ownsWorkDir = false
	}
	if n.lock != nil {
		errs = append(errs, n.checkHostRestored(), n.lock.Close())
		n.lock = nil
	}
	if err := errors.Join(errs...); err != nil {
		n.log.Warn("stop node", "err", err)
	}
}

// deletePods cordons the node, then deletes every pod bound to it each
// second until no pod network is left: a controller may create replacements
// meanwhile (DaemonSet pods tolerate the cordon), and those go too.
// Host-network pods may stay, as CNI never saw them.
func (n *Node) deletePods(ctx context.Context) error {
	nodes := n.client.CoreV1().Nodes()
	cordon := []byte(`{"spec":{"unschedulable":true}}`)
	if _, err := nodes.Patch(ctx, NodeName, types.MergePatchType, cordon, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("cordon node %s: %w", NodeName, err)
	}
	zero := int64(0)
	pods := n.client.CoreV1().Pods(metav1.NamespaceAll)
	var up []string
	err := wait.PollUntilContextTimeout(ctx, time.Second, podTeardownTimeout, true, func(ctx context.Context) (bool, error) {
		list, err := pods.List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + NodeName})
		if err != nil {
			return false, err
		}
		for _, p := range list.Items {
			err := n.client.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
			if err != nil && !apierrors.IsNotFound(err) {
				return false, fmt.Errorf("delete pod %s/%s: %w", p.Namespace, p.Name, err)
			}
		}
		up, err = n.podNetworks(ctx)
		return err == nil && len(up) == 0, err
	})
	if err != nil {
		return fmt.Errorf("delete pods on node %s: %w (pod network namespaces left: %v)", NodeName, err, up)
	}
	return nil
}

// checkHostRestored compares the host with the snapshot StartNode took
// before it changed anything. It runs while the node still holds the host
// lock, so no other node can have changed the host meanwhile.
func (n *Node) checkHostRestored() error {
	after := snapshotHost()
	var diffs []string
	for i := range min(len(after), len(n.hostBefore)) {
		if after[i] != n.hostBefore[i] {
			diffs = append(diffs, fmt.Sprintf("%s, was %s", after[i], n.hostBefore[i]))
		}
	}
	if len(diffs) > 0 {
		return fmt.Errorf("host not restored: %s", strings.Join(diffs, "; "))
	}
	return nil
}

func checkOnPath(name string) error {
	if _, err := exec.LookPath(name); err != nil {
		return fmt.Errorf("%s binary: %w", name, err)
	}
	return nil
}
