// Package node is the e2e suite's real-node tier: a single-node cluster
// (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubelet,
// containerd and runc) on which braid is installed the way operators install
// it, by applying deployments/, and called by the real kubelet and
// containerd. It needs root and `make tools`.
package node

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/braid-cni/braid/e2e/framework"
)

// cluster is what every node test shares, set up once by TestMain.
type cluster struct {
	// newDirs are the host directories braid uses that did not exist
	// before the suite (the topmost missing ancestor of each): tearDown
	// removes them.
	newDirs []string
	// rootShared: setUp made / a shared mount (see framework.ShareRoot).
	rootShared bool
	cp         *framework.ControlPlane
	node       *framework.Node
	root       string
	work       string
	dataDir    string // host-local leases of the node's networks
}

var shared *cluster

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	ci, _ := strconv.ParseBool(os.Getenv("CI"))
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "e2e/node: skipped: needs root")
		if ci {
			return 1
		}
		return 0
	}
	c, err := setUp()
	if c != nil {
		defer c.tearDown()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e/node:", err)
		if c != nil && c.node != nil {
			fmt.Fprintln(os.Stderr, c.node.Logs(40))
		}
		return 1
	}
	shared = c
	code := m.Run()
	if code != 0 {
		// braid's own logs were reported by each mode that failed, before
		// its uninstall took them away.
		fmt.Fprintln(os.Stderr, c.node.Logs(40))
	}
	return code
}

func setUp() (*cluster, error) {
	root, err := framework.RepoRoot()
	if err != nil {
		return nil, err
	}
	work, err := os.MkdirTemp("", "braid-node-")
	if err != nil {
		return nil, err
	}
	c := &cluster{root: root, work: work, dataDir: filepath.Join(work, "leases")}
	for _, dir := range framework.BraidHostDirs() {
		if top := framework.TopMissing(dir); top != "" {
			c.newDirs = append(c.newDirs, top)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	c.cp, err = framework.StartControlPlane(ctx, framework.Options{WorkDir: filepath.Join(work, "cp"), Controllers: true})
	if err != nil {
		return c, err
	}
	if err := framework.InstallNADCRD(ctx, c.cp.AdminConfig()); err != nil {
		return c, err
	}
	c.node, err = framework.StartNode(ctx, c.cp, framework.NodeOptions{WorkDir: filepath.Join(work, "node"), ReadyWithoutNetwork: true})
	if err != nil {
		return c, err
	}
	if err := c.primaryNetwork(ctx); err != nil {
		return c, err
	}
	if c.rootShared, err = framework.ShareRoot(); err != nil {
		return c, err
	}
	if err := c.images(ctx); err != nil {
		return c, err
	}
	fmt.Fprintf(os.Stderr, "e2e/node: cluster up in %s\n", time.Since(start).Round(time.Millisecond))
	return c, nil
}

func (c *cluster) tearDown() {
	if c.node != nil {
		c.node.Stop()
	}
	if c.cp != nil {
		c.cp.Stop()
	}
	if c.rootShared {
		if err := framework.UnshareRoot(); err != nil {
			fmt.Fprintln(os.Stderr, "e2e/node:", err)
		}
	}
	// What the pods' networks left on the host: the cluster network's
	// bridge; and the directories braid used: its (by then empty) journal
	// directory, braidd's socket directory and its NAD config directory.
	if l, err := netlink.LinkByName(clusterBridge); err == nil {
		_ = netlink.LinkDel(l)
	}
	for _, dir := range c.newDirs {
		_ = os.RemoveAll(dir)
	}
	_ = os.RemoveAll(c.work)
}

// build compiles a static binary of the module into the work dir.
func (c *cluster) build(ctx context.Context, pkg, name string) (string, error) {
	out := filepath.Join(c.work, "bin", name)
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", out, pkg)
	cmd.Dir = c.root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %w: %s", pkg, err, msg)
	}
	return out, nil
}
