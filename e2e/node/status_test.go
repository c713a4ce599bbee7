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
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

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
	if major, _, _ := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(rt, "containerd://"), "v"), "."); major == "1" {
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
