package framework

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	nadclientset "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/client/clientset/versioned"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// ControlPlane is a running etcd and kube-apiserver, with
// kube-controller-manager and kube-scheduler when Options.Controllers is set.
// Its methods may be called from several goroutines.
type ControlPlane struct {
	opts        Options
	log         *slog.Logger
	workDir     string
	ownsWorkDir bool
	etcdURL     string
	securePort  int
	// controllerPorts are the secure ports of kube-controller-manager and
	// kube-scheduler; zero without Options.Controllers.
	controllerPorts [2]int
	tokens          tokens
	caData          []byte // set once the API server first answered

	mu                sync.Mutex
	etcd              *process
	apiserver         *process
	controllerManager *process
	scheduler         *process
}

// StartControlPlane starts etcd, then kube-apiserver, and returns once
// /readyz answers ok (at most 90 seconds). With Options.Controllers it then
// starts kube-controller-manager and kube-scheduler and waits until they are
// healthy and the default service account and kube-root-ca.crt exist. ctx
// bounds the start-up only; the processes run until Stop, or until the test
// binary exits.
func StartControlPlane(ctx context.Context, opts Options) (_ *ControlPlane, err error) {
	opts, err = opts.Resolve()
	if err != nil {
		return nil, fmt.Errorf("start control plane: %w", err)
	}
	start := time.Now()
	cp := &ControlPlane{opts: opts, log: slog.New(slog.NewTextHandler(opts.Log, nil)), workDir: opts.WorkDir}
	if cp.workDir == "" {
		if cp.workDir, err = os.MkdirTemp("", "braid-e2e-"); err != nil {
			return nil, fmt.Errorf("start control plane: %w", err)
		}
		cp.ownsWorkDir = true
	}
	defer func() {
		if err != nil {
			cp.Stop()
		}
	}()
	if err := cp.prepareWorkDir(); err != nil {
		return nil, fmt.Errorf("start control plane: %w", err)
	}
	ports, err := freePorts(5)
	if err != nil {
		return nil, fmt.Errorf("start control plane: %w", err)
	}
	if opts.Controllers {
		cp.controllerPorts = [2]int{ports[3], ports[4]}
	}
	etcd := etcdConfig{
		path:       opts.EtcdPath,
		dataDir:    filepath.Join(cp.workDir, "etcd"),
		logPath:    filepath.Join(cp.workDir, "etcd.log"),
		clientPort: ports[0],
		peerPort:   ports[1],
		detach:     opts.Detach,
	}
	cp.etcdURL, cp.securePort = etcd.clientURL(), ports[2]
	if cp.etcd, err = startEtcd(ctx, etcd); err != nil {
		return nil, fmt.Errorf("start control plane: %w", err)
	}
	cp.log.Info("etcd ready", "url", cp.etcdURL, "elapsed", time.Since(start).Round(time.Millisecond))
	if err := cp.StartAPIServer(ctx); err != nil {
		return nil, fmt.Errorf("start control plane: %w", err)
	}
	if cp.caData, err = os.ReadFile(filepath.Join(cp.workDir, "certs", "apiserver.crt")); err != nil {
		return nil, fmt.Errorf("start control plane: read kube-apiserver certificate: %w", err)
	}
	if err := cp.ensureSystemNamespace(ctx); err != nil {
		return nil, fmt.Errorf("start control plane: %w", err)
	}
	if opts.Controllers {
		if err := cp.startControllers(ctx); err != nil {
			return nil, fmt.Errorf("start control plane: %w", err)
		}
	}
	cp.log.Info("control plane ready", "workDir", cp.workDir, "elapsed", time.Since(start).Round(time.Millisecond))
	return cp, nil
}

// prepareWorkDir writes the API server's credentials into the working
// directory.
func (cp *ControlPlane) prepareWorkDir() error {
	if err := os.MkdirAll(filepath.Join(cp.workDir, "certs"), 0o700); err != nil {
		return err
	}
	var err error
	if cp.tokens, err = newTokens(); err != nil {
		return err
	}
	if err := cp.tokens.writeTokenFile(filepath.Join(cp.workDir, "tokens.csv")); err != nil {
		return err
	}
	if err := cp.writeAuditPolicy(); err != nil {
		return err
	}
	return writeServiceAccountKey(filepath.Join(cp.workDir, "sa.key"))
}

// ensureSystemNamespace makes sure kube-system exists before anyone applies
// deployments/rbac.yaml: the API server creates it shortly after start, but
// /readyz does not wait for that.
func (cp *ControlPlane) ensureSystemNamespace(ctx context.Context) error {
	client, _, err := cp.Clients()
	if err != nil {
		return err
	}
	return CreateNamespace(ctx, client, "kube-system")
}

// WorkDir is the directory holding the data, credentials and logs.
func (cp *ControlPlane) WorkDir() string {
	return cp.workDir
}

// AdminConfig returns a config for a member of system:masters.
func (cp *ControlPlane) AdminConfig() *rest.Config {
	return cp.config(cp.tokens.admin)
}

// BraidConfig returns a config for BraidUser, which holds only what
// deployments/rbac.yaml grants once it has been applied.
func (cp *ControlPlane) BraidConfig() *rest.Config {
	return cp.config(cp.tokens.braid)
}

func (cp *ControlPlane) config(token string) *rest.Config {
	return &rest.Config{
		Host:            fmt.Sprintf("https://127.0.0.1:%d", cp.securePort),
		BearerToken:     token,
		TLSClientConfig: rest.TLSClientConfig{CAData: cp.caData},
		UserAgent:       "braid-e2e",
		QPS:             100,
		Burst:           200,
	}
}

// Clients returns admin clients for core resources and
// NetworkAttachmentDefinitions.
func (cp *ControlPlane) Clients() (kubernetes.Interface, nadclientset.Interface, error) {
	cfg := cp.AdminConfig()
	kc, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("create kubernetes client: %w", err)
	}
	nc, err := nadclientset.NewForConfig(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("create NAD client: %w", err)
	}
	return kc, nc, nil
}

// Stop stops the scheduler and controller manager if they run, the API
// server, then etcd, and waits for each to exit. It removes the working
// directory only when StartControlPlane created it. Problems go to
// Options.Log; Stop is safe to call more than once.
func (cp *ControlPlane) Stop() {
	cp.stopControllers()
	cp.StopAPIServer()
	cp.mu.Lock()
	defer cp.mu.Unlock()
	var errs []error
	if cp.etcd != nil {
		errs = append(errs, cp.etcd.stop(5*time.Second))
		cp.etcd = nil
	}
	if cp.ownsWorkDir {
		errs = append(errs, os.RemoveAll(cp.workDir))
		cp.ownsWorkDir = false
	}
	if err := errors.Join(errs...); err != nil {
		cp.log.Warn("stop control plane", "err", err)
	}
}
