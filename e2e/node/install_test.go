package node

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/braid-cni/braid/e2e/framework"
)

const (
	systemNamespace = "kube-system"
	installTimeout  = 90 * time.Second
	thinKubeconfig  = "/etc/cni/net.d/braid.d/braid.kubeconfig"
	braiddSocket    = "/run/braid/braid.sock"
)

// installThin installs thin mode from deployments/ (framework.InstallBraid)
// with braid's log in the suite's work dir: braid runs on the host, and the
// log is printed when a test fails.
func installThin(ctx context.Context, c *cluster) error {
	return framework.InstallBraid(ctx, c.cp, framework.InstallOptions{
		Mode: framework.Thin, Args: []string{"--log-file=" + c.braidLog(), "--log-level=debug"},
	})
}

// installThick installs thick mode from deployments/ (framework.InstallBraid)
// and returns once braidd is Ready and braid's config forwards to it.
func installThick(ctx context.Context, c *cluster) error {
	return framework.InstallBraid(ctx, c.cp, framework.InstallOptions{Mode: framework.Thick, Plugins: referencePlugins})
}

// podReady waits until the DaemonSet (or Deployment) app has a pod and it
// is Ready.
func (c *cluster) podReady(ctx context.Context, app string) error {
	client, _, err := c.cp.Clients()
	if err != nil {
		return err
	}
	_, err = framework.WaitForAppPod(ctx, client, systemNamespace, app, installTimeout, framework.PodReady())
	return err
}

// pods lists the pods of the DaemonSet app.
func (c *cluster) pods(ctx context.Context, app string) ([]corev1.Pod, error) {
	client, _, err := c.cp.Clients()
	if err != nil {
		return nil, err
	}
	list, err := client.CoreV1().Pods(systemNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app=" + app})
	if err != nil {
		return nil, fmt.Errorf("list pods of %s/%s: %w", systemNamespace, app, err)
	}
	return list.Items, nil
}

// podLogs returns the logs of the DaemonSet app's pods, and those of the
// containers' previous runs, for failure reports.
func (c *cluster) podLogs(app string) string {
	client, _, err := c.cp.Clients()
	if err != nil {
		return err.Error()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pods, err := c.pods(ctx, app)
	if err != nil || len(pods) == 0 {
		return fmt.Sprintf("no pod of %s/%s: %v\n", systemNamespace, app, err)
	}
	var b strings.Builder
	for _, p := range pods {
		runs := []bool{false}
		if len(p.Status.ContainerStatuses) > 0 && p.Status.ContainerStatuses[0].RestartCount > 0 {
			runs = []bool{true, false}
		}
		for _, previous := range runs {
			fmt.Fprintf(&b, "--- %s (previous run: %v):\n", p.Name, previous)
			stream, err := client.CoreV1().Pods(p.Namespace).GetLogs(p.Name, &corev1.PodLogOptions{Previous: previous}).Stream(ctx)
			if err != nil {
				fmt.Fprintf(&b, "%v\n", err)
				continue
			}
			data, _ := io.ReadAll(stream)
			_ = stream.Close()
			fmt.Fprintf(&b, "%s\n", data)
		}
	}
	return b.String()
}
