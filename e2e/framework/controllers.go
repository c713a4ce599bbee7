package framework

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
)

// controllerGrace bounds the graceful shutdown of the controller manager and
// the scheduler; neither holds state of its own.
const controllerGrace = 5 * time.Second

// controllerManagerArgs runs every default controller plus the two that
// bootstrap tokens need, with per-controller service account credentials as
// kubeadm does. Tokens it signs for legacy secrets use the API server's key,
// and kube-root-ca.crt carries the API server's certificate bundle.
func (cp *ControlPlane) controllerManagerArgs(kubeconfig string) []string {
	return []string{
		cp.opts.ControllerManagerPath,
		"--kubeconfig=" + kubeconfig,
		"--authentication-kubeconfig=" + kubeconfig,
		"--authorization-kubeconfig=" + kubeconfig,
		"--bind-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(cp.controllerPorts[0]),
		"--cert-dir=" + filepath.Join(cp.workDir, "controller-manager-certs"),
		"--leader-elect=false",
		"--service-account-private-key-file=" + filepath.Join(cp.workDir, "sa.key"),
		"--root-ca-file=" + filepath.Join(cp.workDir, "certs", "apiserver.crt"),
		"--use-service-account-credentials=true",
		// It creates a service account and token per controller at start-up:
		// at the default 20 requests per second that takes seconds.
		"--kube-api-qps=200",
		"--kube-api-burst=400",
		"--controllers=*,bootstrapsigner,tokencleaner",
		// The default, under /usr/libexec, would be created on the host.
		"--flex-volume-plugin-dir=" + filepath.Join(cp.workDir, "flexvolume"),
		"--profiling=false",
	}
}

func (cp *ControlPlane) schedulerArgs(kubeconfig string) []string {
	return []string{
		cp.opts.SchedulerPath,
		"--kubeconfig=" + kubeconfig,
		"--authentication-kubeconfig=" + kubeconfig,
		"--authorization-kubeconfig=" + kubeconfig,
		"--bind-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(cp.controllerPorts[1]),
		"--cert-dir=" + filepath.Join(cp.workDir, "scheduler-certs"),
		"--leader-elect=false",
		"--profiling=false",
	}
}

// startControllers starts kube-controller-manager and kube-scheduler with an
// admin kubeconfig and waits until both answer /healthz and the controllers
// have created what pods need from them: the default service account and the
// kube-root-ca.crt config map of the default namespace.
func (cp *ControlPlane) startControllers(ctx context.Context) error {
	start := time.Now()
	kubeconfig := filepath.Join(cp.workDir, "admin.kubeconfig")
	if err := cp.WriteKubeconfig(kubeconfig, true); err != nil {
		return err
	}
	cp.mu.Lock()
	defer cp.mu.Unlock()
	var err error
	cp.controllerManager, err = startProcess("kube-controller-manager",
		filepath.Join(cp.workDir, "controller-manager.log"), cp.controllerManagerArgs(kubeconfig), procOptions{detach: cp.opts.Detach})
	if err != nil {
		return err
	}
	if cp.scheduler, err = startProcess("kube-scheduler",
		filepath.Join(cp.workDir, "scheduler.log"), cp.schedulerArgs(kubeconfig), procOptions{detach: cp.opts.Detach}); err != nil {
		return err
	}
	for i, p := range []*process{cp.controllerManager, cp.scheduler} {
		if err := waitHealthz(ctx, p, cp.controllerPorts[i]); err != nil {
			return err
		}
	}
	if err := cp.waitDefaultServiceAccount(ctx); err != nil {
		return err
	}
	cp.log.Info("controller manager and scheduler ready", "elapsed", time.Since(start).Round(time.Millisecond))
	return nil
}

// waitHealthz polls a component's /healthz, which its default
// --authorization-always-allow-paths let anonymous requests read. The
// serving certificate is self-signed in memory, so it is not verified.
func waitHealthz(ctx context.Context, p *process, port int) error {
	client := &http.Client{
		Timeout:   2 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}},
	}
	defer client.CloseIdleConnections()
	url := fmt.Sprintf("https://127.0.0.1:%d/healthz", port)
	var lastErr error
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, readyTimeout, true, func(ctx context.Context) (bool, error) {
		if p.exited() {
			return false, fmt.Errorf("%s exited", p.name)
		}
		lastErr = getOK(ctx, client, url)
		return lastErr == nil, nil
	})
	if err != nil {
		return fmt.Errorf("wait for %s %s: %w (last check: %v); last lines of %s:\n%s",
			p.name, url, err, lastErr, filepath.Base(p.logPath), p.tail(30))
	}
	return nil
}

func getOK(ctx context.Context, client *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %s", resp.Status)
	}
	return nil
}

// waitDefaultServiceAccount waits for the service account and root CA
// controllers: until both have run, the ServiceAccount admission plugin
// rejects pods, or their token volume cannot be mounted.
func (cp *ControlPlane) waitDefaultServiceAccount(ctx context.Context) error {
	client, err := kubernetes.NewForConfig(cp.AdminConfig())
	if err != nil {
		return fmt.Errorf("wait for default service account: %w", err)
	}
	var lastErr error
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, readyTimeout, true, func(ctx context.Context) (bool, error) {
		if cp.controllerManager.exited() {
			return false, errors.New("kube-controller-manager exited")
		}
		_, lastErr = client.CoreV1().ServiceAccounts(metav1.NamespaceDefault).Get(ctx, "default", metav1.GetOptions{})
		if lastErr == nil {
			_, lastErr = client.CoreV1().ConfigMaps(metav1.NamespaceDefault).Get(ctx, "kube-root-ca.crt", metav1.GetOptions{})
		}
		if lastErr != nil && !apierrors.IsNotFound(lastErr) {
			return false, lastErr
		}
		return lastErr == nil, nil
	})
	if err != nil {
		return fmt.Errorf("wait for service account default/default and config map default/kube-root-ca.crt: %w (last check: %v); last lines of controller-manager.log:\n%s",
			err, lastErr, cp.controllerManager.tail(30))
	}
	return nil
}

// stopControllers stops the scheduler and the controller manager, if they
// run. Problems go to Options.Log.
func (cp *ControlPlane) stopControllers() {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	var errs []error
	for _, p := range []**process{&cp.scheduler, &cp.controllerManager} {
		if *p != nil {
			errs = append(errs, (*p).stop(controllerGrace))
			*p = nil
		}
	}
	if err := errors.Join(errs...); err != nil {
		cp.log.Warn("stop controllers", "err", err)
	}
}
