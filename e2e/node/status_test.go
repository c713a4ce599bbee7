package node

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8stypes "k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/braid-cni/braid/e2e/framework"
)

const (
	// braiddMetrics is braidd's ops address (metricsAddr in
	// deployments/daemonset-thick.yaml) on the host's network.
	braiddMetrics = "http://127.0.0.1:9091/metrics"
	// statusMetric counts the STATUS calls braidd answered with success.
	statusMetric = `braid_requests_total{result="ok",verb="STATUS"}`
	// statusWait bounds the wait for containerd's STATUS calls: the kubelet
	// asks for the runtime's status every 5 s.
	statusWait = 30 * time.Second
)

// thinStatusCalls counts the STATUS calls thin braid answered with success:
// its log's "STATUS done" lines (debug level, see installThin). braid
// creates its log when it first runs.
func thinStatusCalls(c *cluster) (int, error) {
	data, err := os.ReadFile(c.braidLog())
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read braid's log: %w", err)
	}
	return strings.Count(string(data), `msg="STATUS done"`), nil
}

// thickStatusCalls reads braidd's count of STATUS calls answered with
// success from its metrics.
func thickStatusCalls(*cluster) (int, error) {
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(braiddMetrics)
	if err != nil {
		return 0, fmt.Errorf("get braidd's metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		return 0, fmt.Errorf("get braidd's metrics: %s: %s", resp.Status, body)
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if value, ok := strings.CutPrefix(sc.Text(), statusMetric+" "); ok {
			n, err := strconv.ParseFloat(value, 64)
			if err != nil {
				return 0, fmt.Errorf("braidd's metric %s: %w", statusMetric, err)
			}
			return int(n), nil
		}
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("read braidd's metrics: %w", err)
	}
	return 0, nil // no STATUS answered yet
}

// networkReady: containerd 2 runs CNI STATUS on braid's conflist, at
// cniVersion 1.1.0 as the cluster network's, each time the kubelet asks
// for the runtime's status; braid answers it with success, and the node
// stays Ready (its runtime network ready) without a transition meanwhile.
// containerd 1.6 (BRAID_CONTAINERD) never runs STATUS.
func networkReady(t *testing.T, m mode) {
	node := readyNode(t)
	rt := node.Status.NodeInfo.ContainerRuntimeVersion
	if !runsStatus(rt) {
		t.Skipf("the node's runtime %s never runs CNI STATUS", rt)
	}
	if conf := readFile(t, filepath.Join(hostConfDir, braidFile)); !strings.Contains(conf, `"cniVersion": "1.1.0"`) {
		t.Fatalf("%s is not at cniVersion 1.1.0, so containerd never runs STATUS on it:\n%s", braidFile, conf)
	}
	before, err := m.statusCalls(shared)
	if err != nil {
		t.Fatal(err)
	}
	// Two more calls: containerd keeps calling, not once at start-up.
	calls := before
	deadline := time.Now().Add(statusWait)
	for calls < before+2 && time.Now().Before(deadline) {
		time.Sleep(time.Second)
		if calls, err = m.statusCalls(shared); err != nil {
			t.Fatal(err)
		}
	}
	if calls < before+2 {
		t.Fatalf("braid answered %d STATUS calls in %s on %s (%d before), want at least 2", calls-before, statusWait, rt, before)
	}
	t.Logf("braid answered %d STATUS calls from %s (%d since this scenario started)", calls, rt, calls-before)
	after := readyNode(t)
	if was, now := readyCondition(node), readyCondition(after); !now.LastTransitionTime.Equal(&was.LastTransitionTime) {
		t.Errorf("node %s changed Ready meanwhile: %s at %v, was %s at %v",
			framework.NodeName, now.Status, now.LastTransitionTime, was.Status, was.LastTransitionTime)
	}
}

// readyNode returns the node, failing the test unless it is Ready: the
// kubelet reports it not Ready while the runtime's network is not.
func readyNode(t *testing.T) *corev1.Node {
	t.Helper()
	client, _, err := shared.cp.Clients()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	node, err := client.CoreV1().Nodes().Get(ctx, framework.NodeName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c := readyCondition(node); c.Status != corev1.ConditionTrue {
		t.Fatalf("node %s: Ready=%q: %s: %s", node.Name, c.Status, c.Reason, c.Message)
	}
	return node
}

// readyCondition returns the node's Ready condition; zero when it has
// none yet.
func readyCondition(node *corev1.Node) corev1.NodeCondition {
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c
		}
	}
	return corev1.NodeCondition{}
}

// healthWait bounds each change of the node's network readiness: the
// kubelet asks the runtime every 5 s and reports the node every 10 s.
const healthWait = 90 * time.Second

// networkHealth: braid's STATUS is the node's network health under a real
// kubelet and containerd 2. When the cluster network's own STATUS fails
// (its IPAM plugin gone from the node), the node reports its network not
// ready with the delegate's message, and ready again once the plugin is
// back. In thick mode, braidd stopped by a DaemonSet update (not an
// uninstall) leaves braid's conflist in place, the node reports its
// network not ready naming braidd's socket, a pod created meanwhile is not
// started half-attached, and once braidd is back the node is ready and the
// pod runs with every network it asked for.
func networkHealth(t *testing.T, m mode) {
	node := readyNode(t)
	rt := node.Status.NodeInfo.ContainerRuntimeVersion
	if !runsStatus(rt) {
		t.Skipf("the node's runtime %s never runs CNI STATUS", rt)
	}

	ipam := filepath.Join(hostBinDir, "host-local")
	aside := ipam + ".aside"
	if err := os.Rename(ipam, aside); err != nil {
		t.Fatal(err)
	}
	restore := sync.OnceFunc(func() {
		if err := os.Rename(aside, ipam); err != nil {
			t.Errorf("put host-local back: %v", err)
		}
	})
	t.Cleanup(restore)
	c := waitNetwork(t, false, "network cluster (plugin bridge", `"host-local"`)
	t.Logf("cluster network's STATUS failing: node %s Ready=%s: %s", framework.NodeName, c.Status, c.Message)
	restore()
	waitNetwork(t, true)

	if m.app != "braidd" {
		return
	}
	e := newEnv(t, m, "health")
	e.bridgeNAD("blue", "br-hblue", "10.89.9.0/24")
	restart := stopBraidd(t, e)
	if _, err := os.Stat(filepath.Join(hostConfDir, braidFile)); err != nil {
		t.Errorf("braidd stopped by an update removed braid's conflist: %v", err)
	}
	c = waitNetwork(t, false, braiddSocket)
	t.Logf("braidd stopped: node %s Ready=%s: %s", framework.NodeName, c.Status, c.Message)
	sandboxes := len(journal())
	e.pod("waits", "blue")
	time.Sleep(10 * time.Second) // long enough for a sandbox to be tried
	pod, err := e.kube.CoreV1().Pods(e.namespace).Get(t.Context(), "waits", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := pod.Annotations[nadv1.NetworkStatusAnnot]; ok || pod.Status.Phase == corev1.PodRunning {
		t.Errorf("pod %s %s with network-status %v while braidd is stopped", pod.Name, pod.Status.Phase, ok)
	}
	if n := len(journal()); n != sandboxes {
		t.Errorf("braid's journal went from %d to %d sandboxes while braidd is stopped", sandboxes, n)
	}
	restart()
	waitNetwork(t, true)
	matchStatus(t, e.running("waits"), []string{"eth0", "net1"})
}

// stopBraidd stops braidd as a DaemonSet update does, not as an uninstall:
// the DaemonSet stays, with a node selector no node matches, and braidd's
// pod goes. It returns what starts braidd again, once however often it is
// called; the test's cleanup calls it too.
func stopBraidd(t *testing.T, e *env) (start func()) {
	t.Helper()
	patch := `{"spec":{"template":{"spec":{"nodeSelector":{"braid.test/nowhere":"true"}}}}}`
	if _, err := e.kube.AppsV1().DaemonSets(systemNamespace).Patch(t.Context(), "braidd", k8stypes.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatalf("stop braidd: %v", err)
	}
	start = sync.OnceFunc(func() { startBraidd(t) })
	t.Cleanup(start)
	ctx, cancel := context.WithTimeout(t.Context(), installTimeout)
	defer cancel()
	err := wait.PollUntilContextCancel(ctx, time.Second, true, func(ctx context.Context) (bool, error) {
		pods, err := shared.pods(ctx, "braidd")
		return err == nil && len(pods) == 0, nil
	})
	if err != nil {
		t.Fatalf("braidd's pod still there after the update: %v", err)
	}
	return start
}

// startBraidd undoes stopBraidd and waits for braidd to be Ready.
func startBraidd(t *testing.T) {
	t.Helper()
	client, _, err := shared.cp.Clients()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), installTimeout)
	defer cancel()
	patch := `{"spec":{"template":{"spec":{"nodeSelector":{"braid.test/nowhere":null}}}}}`
	if _, err := client.AppsV1().DaemonSets(systemNamespace).Patch(ctx, "braidd", k8stypes.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatalf("start braidd: %v", err)
	}
	if err := shared.podReady(ctx, "braidd"); err != nil {
		t.Fatalf("braidd back: %v", err)
	}
}

// waitNetwork waits until the node's Ready condition is ready and, when
// not ready, its message holds each of want; it returns the condition.
func waitNetwork(t *testing.T, ready bool, want ...string) corev1.NodeCondition {
	t.Helper()
	client, _, err := shared.cp.Clients()
	if err != nil {
		t.Fatal(err)
	}
	wantStatus := corev1.ConditionFalse
	if ready {
		wantStatus = corev1.ConditionTrue
	}
	var last corev1.NodeCondition
	ctx, cancel := context.WithTimeout(t.Context(), healthWait)
	defer cancel()
	err = wait.PollUntilContextCancel(ctx, time.Second, true, func(ctx context.Context) (bool, error) {
		node, err := client.CoreV1().Nodes().Get(ctx, framework.NodeName, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		last = readyCondition(node)
		if last.Status != wantStatus {
			return false, nil
		}
		for _, w := range want {
			if !strings.Contains(last.Message, w) {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("node %s: Ready=%s (%s: %s), want %s with a message naming %q", framework.NodeName, last.Status, last.Reason, last.Message, wantStatus, want)
	}
	return last
}
