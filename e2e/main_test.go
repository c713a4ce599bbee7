// Package e2e drives braid the way a container runtime does: through libcni,
// against a real kube-apiserver and etcd, with real network namespaces and
// the reference CNI plugins. It needs root; `make e2e` builds what it needs.
package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/braid-cni/braid/e2e/framework"
)

// suite is what every test shares: one control plane and the binaries.
type suite struct {
	cp         *framework.ControlPlane
	root       string
	pluginsDir string // reference plugins
	braidDir   string // holds the braid binary built for this run
	braiddBin  string // braidd, built for this run
	// What a node's braid and braidd hold: tokens of the braid and braidd
	// service accounts (deployments/rbac.yaml, rbac-thick.yaml) bound to a
	// pod on testNode, the node of every pod the tests create.
	braidToken, braiddToken      string
	kubeconfig, braiddKubeconfig string // with braidToken, braiddToken
}

// testNode is the node the tests' pods are on, and braid's token is for.
const testNode = "node1"

// shared is set once by TestMain before any test runs and only read after.
var shared *suite

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ci, _ := strconv.ParseBool(os.Getenv("CI"))
	if os.Geteuid() != 0 {
		if ci {
			fmt.Fprintln(os.Stderr, "e2e: needs root (network namespaces), and CI=true")
			return 1
		}
		fmt.Fprintln(os.Stderr, "e2e: skipped: needs root to create network namespaces")
		return 0
	}
	s, stop, err := setUp()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		if !ci && os.IsNotExist(err) {
			return 0
		}
		return 1
	}
	defer stop()
	shared = s
	return m.Run()
}

func setUp() (*suite, func(), error) {
	root, err := framework.RepoRoot()
	if err != nil {
		return nil, nil, err
	}
	work, err := os.MkdirTemp("", "braid-e2e-")
	if err != nil {
		return nil, nil, err
	}
	s := &suite{root: root, pluginsDir: filepath.Join(root, "bin", "plugins"), braidDir: filepath.Join(work, "bin")}
	for _, p := range []string{"bridge", "macvlan", "host-local", "static", "tuning"} {
		if _, err := os.Stat(filepath.Join(s.pluginsDir, p)); err != nil {
			return nil, nil, fmt.Errorf("reference plugin %s missing (run `make tools`): %w", p, err)
		}
	}
	s.braiddBin = filepath.Join(work, "braidd")
	for pkg, out := range map[string]string{
		"./cmd/braid":      filepath.Join(s.braidDir, "braid"),
		"./cmd/braid-shim": filepath.Join(s.braidDir, "braid-shim"),
		"./cmd/braidd":     s.braiddBin,
	} {
		build := exec.Command("go", "build", "-o", out, pkg)
		build.Dir, build.Stdout, build.Stderr = root, os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return nil, nil, fmt.Errorf("build %s: %w", pkg, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s.cp, err = framework.StartControlPlane(ctx, framework.Options{WorkDir: filepath.Join(work, "cp")})
	if err != nil {
		return nil, nil, err
	}
	stop := func() {
		s.cp.Stop()
		_ = os.RemoveAll(work)
	}
	admin := s.cp.AdminConfig()
	if err := framework.InstallNADCRD(ctx, admin); err != nil {
		stop()
		return nil, nil, err
	}
	for _, f := range []string{"rbac.yaml", "rbac-thick.yaml"} {
		if err := framework.EnsureObjects(ctx, admin, filepath.Join(root, "deployments", f)); err != nil {
			stop()
			return nil, nil, err
		}
	}
	for _, acct := range []struct {
		name        string
		token, path *string
	}{{"braid", &s.braidToken, &s.kubeconfig}, {"braidd", &s.braiddToken, &s.braiddKubeconfig}} {
		if *acct.token, err = s.cp.NodeToken(ctx, "kube-system", acct.name, testNode, 2*time.Hour); err != nil {
			stop()
			return nil, nil, err
		}
		*acct.path = filepath.Join(work, acct.name+".kubeconfig")
		if err := s.cp.WriteTokenKubeconfig(*acct.path, acct.name, *acct.token); err != nil {
			stop()
			return nil, nil, err
		}
	}
	return s, stop, nil
}
