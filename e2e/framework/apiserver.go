package framework

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

const (
	readyTimeout = 90 * time.Second
	// apiserverGrace bounds the graceful shutdown; the API server holds no
	// state of its own, so a kill after that is harmless.
	apiserverGrace = 10 * time.Second
)

// apiserverArgs are the flags of a kube-apiserver that needs no other
// control plane component unless Options.Controllers is set. The working
// directory's layout is fixed by StartControlPlane.
func (cp *ControlPlane) apiserverArgs() []string {
	saKey := filepath.Join(cp.workDir, "sa.key")
	args := []string{
		cp.opts.APIServerPath,
		"--etcd-servers=" + cp.etcdURL,
		"--bind-address=127.0.0.1",
		// Without it the server advertises the address of the default route,
		// and fails to start on a host that has none.
		"--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(cp.securePort),
		"--cert-dir=" + filepath.Join(cp.workDir, "certs"),
		"--token-auth-file=" + filepath.Join(cp.workDir, "tokens.csv"),
		"--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file=" + saKey,
		"--service-account-signing-key-file=" + saKey,
		"--service-cluster-ip-range=10.96.0.0/24",
		"--enable-priority-and-fairness=false",
		// The kubernetes service would otherwise point at 127.0.0.1, which
		// endpoint validation rejects, and the reconciler would log about it.
		"--endpoint-reconciler-type=none",
		"--allow-privileged=true",
		"--profiling=false",
	}
	if !cp.opts.Controllers {
		// No controller-manager creates the default service accounts and the
		// kube-root-ca.crt config maps this plugin would insist on.
		args = append(args, "--disable-admission-plugins=ServiceAccount")
	}
	return append(args, cp.auditArgs()...)
}

// StartAPIServer starts the API server again after StopAPIServer, on the same
// port and with the same certificates and tokens, so configs and kubeconfigs
// handed out earlier keep working. ctx bounds the wait for /readyz only.
func (cp *ControlPlane) StartAPIServer(ctx context.Context) error {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	if cp.apiserver != nil && !cp.apiserver.exited() {
		return errors.New("start kube-apiserver: already running")
	}
	p, err := startProcess("kube-apiserver", filepath.Join(cp.workDir, "apiserver.log"), cp.apiserverArgs(), procOptions{detach: cp.opts.Detach})
	if err != nil {
		return err
	}
	cp.apiserver = p
	if err := cp.waitReady(ctx, p); err != nil {
		return errors.Join(err, p.stop(time.Second))
	}
	return nil
}

// StopAPIServer stops the API server and leaves etcd running, so tests can
// exercise braid while the API is unreachable. Problems go to Options.Log.
func (cp *ControlPlane) StopAPIServer() {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	if cp.apiserver == nil {
		return
	}
	if err := cp.apiserver.stop(apiserverGrace); err != nil {
		cp.log.Warn("stop kube-apiserver", "err", err)
	}
	cp.apiserver = nil
}

// waitReady polls /readyz as the admin until it answers ok. TLS is not
// verified here because the server writes its self-signed certificate only
// while starting; StartControlPlane reads it afterwards.
func (cp *ControlPlane) waitReady(ctx context.Context, p *process) error {
	start := time.Now()
	cfg := cp.AdminConfig()
	cfg.TLSClientConfig = rest.TLSClientConfig{Insecure: true}
	cfg.Timeout = 5 * time.Second
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("wait for kube-apiserver: %w", err)
	}
	var lastErr error
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, readyTimeout, true, func(ctx context.Context) (bool, error) {
		if p.exited() {
			return false, errors.New("kube-apiserver exited")
		}
		_, lastErr = client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return lastErr == nil, nil
	})
	if err != nil {
		return fmt.Errorf("wait for kube-apiserver /readyz on port %d: %w (last check: %v); last lines of apiserver.log:\n%s",
			cp.securePort, err, lastErr, p.tail(30))
	}
	cp.log.Info("kube-apiserver ready", "port", cp.securePort, "elapsed", time.Since(start).Round(time.Millisecond))
	return nil
}
