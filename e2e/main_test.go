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
	"strings"
	"testing"
	"time"

	nadclientset "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/client/clientset/versioned"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8stypes "k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

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
	// pod on testNode, the node of every pod the tests create, so
	// deployments/policy.yaml lets them write those pods' status.
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
	for _, f := range []string{"rbac.yaml", "rbac-thick.yaml", "policy.yaml"} {
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
	if err := waitNodePolicy(ctx, s.cp, s.braidToken); err != nil {
		stop()
		return nil, nil, err
	}
	return s, stop, nil
}

// waitNodePolicy waits until the API server enforces deployments/policy.yaml
// (it loads policies in the background): until a dry run of a label change
// through pods/status with braid's token is refused by it. The pod is the one
// the token is bound to, on its own node.
func waitNodePolicy(ctx context.Context, cp *framework.ControlPlane, token string) error {
	client, err := kubernetes.NewForConfig(cp.TokenConfig(token))
	if err != nil {
		return err
	}
	patch := []byte(`{"metadata":{"labels":{"braid-e2e-probe":"x"}}}`)
	dry := metav1.PatchOptions{DryRun: []string{metav1.DryRunAll}}
	var last error
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		_, last = client.CoreV1().Pods("kube-system").Patch(ctx, framework.NodeTokenPod("braid", testNode), k8stypes.MergePatchType, patch, dry, "status")
		// Forbidden by the policy, not by RBAC not loaded yet either.
		return apierrors.IsForbidden(last) && strings.Contains(last.Error(), "braid-pod-status"), nil
	})
	if err != nil {
		return fmt.Errorf("deployments/policy.yaml not enforced: %w (last: %v)", err, last)
	}
	return nil
}

// ownNamespace creates a namespace named prefix-<n> for one test, whose pods
// and NADs are deleted at its end, and returns the admin's clients.
func ownNamespace(t *testing.T, prefix string) (kubernetes.Interface, nadclientset.Interface, string) {
	t.Helper()
	kube, nads, err := shared.cp.Clients()
	if err != nil {
		t.Fatal(err)
	}
	ns := fmt.Sprintf("%s-%d", prefix, seq.Add(1))
	if err := framework.CreateNamespaceWithSA(t.Context(), kube, ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := framework.DeleteNamespaceObjects(ctx, kube, nads, ns); err != nil {
			t.Logf("cleanup: %v", err)
		}
	})
	return kube, nads, ns
}
