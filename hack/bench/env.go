package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	nadclientset "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/client/clientset/versioned"
	"k8s.io/client-go/kubernetes"

	"github.com/braid-cni/braid/e2e/framework"
)

const (
	// maxSecondaries is the number of NADs created: the largest N measured.
	maxSecondaries = 16
	namespace      = "bench"
	cniVersion     = "1.0.0"
	clusterBridge  = "brbc"
)

// env is the bench's world: a control plane, the binaries, the networks.
type env struct {
	root         string
	work         string
	pluginsDir   string
	bin          binaries // this tree's
	base         binaries // -baseline's; zero without it
	baseRev      string   // -baseline's commit, short; empty without it
	kubeconfig   string   // braid's least-privilege kubeconfig
	dataDir      string   // host-local leases of every network
	clusterConf  string   // the cluster network's conflist
	auditLog     string   // kube-apiserver's audit log; empty without one
	multusDir    string   // where libcni finds Multus; empty without it
	multusThick  bool     // multus-daemon and multus-shim are in multusDir
	cp           *framework.ControlPlane
	kube         kubernetes.Interface
	nads         nadclientset.Interface
	nadConfs     [][]byte // the NADs' configs, NAD i+1 at i
	daemons      []*framework.Braidd
	multusDaemon *exec.Cmd // multus-daemon, while it runs
}

// envOptions are what a benchmark needs of its env.
type envOptions struct {
	maxN     int    // secondary networks created
	baseline string // a git revision whose binaries are built too, or empty
	audit    bool   // kube-apiserver keeps an audit log
	multus   bool   // Multus is measured if its binary is found
}

// setUp builds the binaries (also the baseline's), starts the control plane
// and installs what braid needs, creates the networks and, if asked and its
// binary is found, readies Multus. On error it
// undoes what it did.
func setUp(ctx context.Context, o envOptions) (_ *env, err error) {
	root, err := framework.RepoRoot()
	if err != nil {
		return nil, err
	}
	work, err := os.MkdirTemp("", "braid-bench-")
	if err != nil {
		return nil, err
	}
	e := &env{root: root, work: work, pluginsDir: filepath.Join(root, "bin", "plugins"),
		bin: newBinaries(work), kubeconfig: filepath.Join(work, "braid.kubeconfig"), dataDir: filepath.Join(work, "leases")}
	defer func() {
		if err != nil {
			e.tearDown()
		}
	}()
	if err := e.build(ctx); err != nil {
		return nil, err
	}
	if o.baseline != "" {
		if err := e.buildBaseline(ctx, o.baseline); err != nil {
			return nil, err
		}
	}
	if o.audit {
		e.auditLog = filepath.Join(e.work, "audit", "audit.log")
	}
	if err := e.startControlPlane(ctx); err != nil {
		return nil, err
	}
	if err := e.writeNetworks(ctx, o.maxN); err != nil {
		return nil, err
	}
	if o.multus {
		if err := e.setUpMultus(ctx, os.Stderr); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// build compiles this tree's braid programs and the do-nothing meta-plugin
// into the work directory and checks the reference plugins are there.
func (e *env) build(ctx context.Context) error {
	for _, p := range []string{"bridge", "host-local"} {
		if _, err := os.Stat(filepath.Join(e.pluginsDir, p)); err != nil {
			return fmt.Errorf("reference plugin %s missing (run `make tools`): %w", p, err)
		}
	}
	if err := e.bin.build(ctx, e.root, ""); err != nil {
		return err
	}
	return e.bin.buildNoop(ctx, e.root)
}

// startControlPlane starts etcd and kube-apiserver (with the audit log if
// e.auditLog names one) with the NAD CRD, braid's RBAC (thin and thick)
// and a kubeconfig for braid's service account.
func (e *env) startControlPlane(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cp, err := framework.StartControlPlane(ctx, framework.Options{WorkDir: filepath.Join(e.work, "cp"), AuditLog: e.auditLog})
	if err != nil {
		return err
	}
	e.cp = cp
	admin := cp.AdminConfig()
	if err := framework.InstallNADCRD(ctx, admin); err != nil {
		return err
	}
	for _, f := range []string{"deployments/rbac.yaml", "deployments/rbac-thick.yaml", "e2e/testdata/braidd-binding.yaml"} {
		if err := framework.EnsureObjects(ctx, admin, filepath.Join(e.root, f)); err != nil {
			return err
		}
	}
	if err := cp.WriteKubeconfig(e.kubeconfig, false); err != nil {
		return err
	}
	e.kube, e.nads, err = cp.Clients()
	if err != nil {
		return err
	}
	return framework.CreateNamespaceWithSA(ctx, e.kube, namespace)
}

// tearDown stops the daemons and the control plane, removes the bridges and
// the work directory. It is safe on a partial set-up.
func (e *env) tearDown() {
	for _, d := range e.daemons {
		d.Stop()
	}
	e.stopMultusDaemon()
	if e.kube != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := framework.DeleteNamespaceObjects(ctx, e.kube, e.nads, namespace); err != nil {
			fmt.Fprintln(os.Stderr, "bench: cleanup:", err)
		}
		cancel()
	}
	deleteLink(clusterBridge)
	for i := 1; i <= maxSecondaries; i++ {
		deleteLink(nadBridge(i))
	}
	if e.cp != nil {
		e.cp.Stop()
	}
	_ = os.RemoveAll(e.work)
}
