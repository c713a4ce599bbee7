package node

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/braid-cni/braid/e2e/framework"
)

const (
	hostBinDir    = "/opt/cni/bin"
	hostConfDir   = "/etc/cni/net.d"
	primaryFile   = "10-cluster.conflist"
	braidFile     = "00-braid.conflist"
	braidCNIDir   = "/var/lib/cni/braid" // braid's default cniDir
	clusterBridge = "braid-node0"
	clusterCIDR   = "10.88.0.0/24"
	workload      = "braid.local/workload:e2e"
)

// referencePlugins are the CNI plugins the node has (see `make tools`).
var referencePlugins = []string{"bridge", "host-local", "loopback", "macvlan", "static", "tuning", "portmap"}

// primaryNetwork puts the node's own cluster network in place, as a node
// has before braid is installed: the reference plugins in /opt/cni/bin and a
// bridge + host-local conflist in /etc/cni/net.d, at cniVersion 1.1.0 so
// that containerd 2 runs STATUS on it, and on braid's conflist, which takes
// its version. Under containerd 1.6, whose libcni refuses 1.1.0 results,
// at 1.0.0, as a node of that runtime has it.
func (c *cluster) primaryNetwork(ctx context.Context) error {
	client, _, err := c.cp.Clients()
	if err != nil {
		return err
	}
	node, err := client.CoreV1().Nodes().Get(ctx, framework.NodeName, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("the node's runtime: %w", err)
	}
	cniVersion := "1.0.0"
	if runsStatus(node.Status.NodeInfo.ContainerRuntimeVersion) {
		cniVersion = "1.1.0"
	}
	if err := os.MkdirAll(hostBinDir, 0o755); err != nil {
		return err
	}
	for _, p := range referencePlugins {
		data, err := os.ReadFile(filepath.Join(c.root, "bin", "plugins", p))
		if err != nil {
			return fmt.Errorf("reference plugin %s (run `make tools`): %w", p, err)
		}
		if err := os.WriteFile(filepath.Join(hostBinDir, p), data, 0o755); err != nil {
			return err
		}
	}
	conf := map[string]any{
		"cniVersion": cniVersion,
		"name":       "cluster",
		"plugins": []any{
			map[string]any{
				"type": "bridge", "bridge": clusterBridge, "isGateway": true, "ipMasq": false,
				"ipam": map[string]any{
					"type": "host-local", "dataDir": c.dataDir,
					"ranges": []any{[]any{map[string]any{"subnet": clusterCIDR}}},
					"routes": []any{map[string]any{"dst": "0.0.0.0/0"}},
				},
			},
			map[string]any{"type": "portmap", "capabilities": map[string]any{"portMappings": true}},
		},
	}
	data, err := json.MarshalIndent(conf, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(hostConfDir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(hostConfDir, primaryFile), data, 0o644)
}

// runsStatus reports whether the container runtime rt (the node's
// containerRuntimeVersion) runs CNI STATUS: containerd 2 does, 1.x never.
func runsStatus(rt string) bool {
	major, _, _ := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(rt, "containerd://"), "v"), ".")
	return major != "1"
}

// images builds and imports the sandbox image, braid's image and the
// workload image; there is no registry.
func (c *cluster) images(ctx context.Context) error {
	dir := filepath.Join(c.work, "images")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	pause, err := framework.BuildPauseImage(ctx, dir)
	if err != nil {
		return err
	}
	for _, name := range []string{"braid", "braid-shim", "braid-install", "braidd", "braid-webhook"} {
		if _, err := c.build(ctx, "./cmd/"+name, name); err != nil {
			return err
		}
	}
	braidImage, err := framework.BuildBraidImage(dir, filepath.Join(c.work, "bin"))
	if err != nil {
		return err
	}
	wl, err := c.build(ctx, "./e2e/testdata/workload", "workload")
	if err != nil {
		return err
	}
	wlImage, err := framework.BuildImage(dir, workload, map[string]string{"/workload": wl}, []string{"/workload"})
	if err != nil {
		return err
	}
	for _, img := range []string{pause, braidImage, wlImage} {
		if err := c.node.ImportImage(ctx, img); err != nil {
			return err
		}
	}
	return nil
}

// waitFile waits until path exists (present) or is gone (!present).
func waitFile(ctx context.Context, path string, present bool, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		_, err := os.Stat(path)
		if (err == nil) == present {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: present=%v not reached in %s", path, present, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (c *cluster) braidLog() string { return filepath.Join(c.work, "braid.log") }

// braidLogs returns the end of braid's own log, for failure reports.
func (c *cluster) braidLogs(n int) string {
	data, err := os.ReadFile(c.braidLog())
	if err != nil {
		return fmt.Sprintf("braid.log: %v", err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "--- braid.log:\n" + strings.Join(lines, "\n")
}
