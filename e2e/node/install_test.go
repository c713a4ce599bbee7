package node

import (
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/yaml"

	"github.com/braid-cni/braid/e2e/framework"
)

const (
	systemNamespace = "kube-system"
	installTimeout  = 90 * time.Second
	thinKubeconfig  = "/etc/cni/net.d/braid.d/braid.kubeconfig"
	braiddSocket    = "/run/braid/braid.sock"
)

// installThin applies deployments/ for thin mode as an operator would. The
// one change: this node has no kube-proxy, so the installer is told the API
// server's real address instead of the kubernetes service's.
func installThin(ctx context.Context, c *cluster) error {
	if err := c.ensure(ctx, "crd.yaml", "rbac.yaml", "policy.yaml"); err != nil {
		return err
	}
	var ds appsv1.DaemonSet
	if err := c.decode("daemonset-thin.yaml", &ds); err != nil {
		return err
	}
	container, err := onlyContainer(&ds)
	if err != nil {
		return err
	}
	container.Args = append(container.Args,
		"--api-server="+c.cp.AdminConfig().Host,
		// braid runs on the host: its log goes to the suite's work dir,
		// to be printed when a test fails.
		"--log-file="+c.braidLog(), "--log-level=debug")
	client, _, err := c.cp.Clients()
	if err != nil {
		return err
	}
	if _, err := client.AppsV1().DaemonSets(ds.Namespace).Create(ctx, &ds, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create DaemonSet %s/%s: %w", ds.Namespace, ds.Name, err)
	}
	return waitFile(ctx, filepath.Join(hostConfDir, braidFile), true, installTimeout)
}

// installThick applies deployments/ for thick mode as an operator would,
// with thin mode's one change: braidd is told the API server's real
// address. It returns once braidd is Ready (its caches synced) and has
// written braid's config, which forwards to it.
func installThick(ctx context.Context, c *cluster) error {
	if err := c.ensure(ctx, "crd.yaml", "rbac-thick.yaml", "policy.yaml"); err != nil {
		return err
	}
	var cm corev1.ConfigMap
	var ds appsv1.DaemonSet
	if err := c.decode("daemonset-thick.yaml", &cm, &ds); err != nil {
		return err
	}
	if err := metricsAddrFree(cm.Data["braidd.json"]); err != nil {
		return err
	}
	if err := pluginsStatic(); err != nil {
		return err
	}
	container, err := onlyContainer(&ds)
	if err != nil {
		return err
	}
	container.Args = append(container.Args, "--api-server="+c.cp.AdminConfig().Host)
	client, _, err := c.cp.Clients()
	if err != nil {
		return err
	}
	if _, err := client.CoreV1().ConfigMaps(cm.Namespace).Create(ctx, &cm, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create ConfigMap %s/%s: %w", cm.Namespace, cm.Name, err)
	}
	if _, err := client.AppsV1().DaemonSets(ds.Namespace).Create(ctx, &ds, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create DaemonSet %s/%s: %w", ds.Namespace, ds.Name, err)
	}
	if err := c.podReady(ctx, "braidd"); err != nil {
		return err
	}
	return waitFileHolds(ctx, filepath.Join(hostConfDir, braidFile), `"daemonSocketDir"`, installTimeout)
}

// ensure applies deployments/ files whose objects the test takes as they are.
func (c *cluster) ensure(ctx context.Context, files ...string) error {
	for _, f := range files {
		if err := framework.EnsureObjects(ctx, c.cp.AdminConfig(), filepath.Join(c.root, "deployments", f)); err != nil {
			return err
		}
	}
	return nil
}

// decode reads the documents of a deployments/ file into objs, in order.
func (c *cluster) decode(file string, objs ...any) error {
	data, err := os.ReadFile(filepath.Join(c.root, "deployments", file))
	if err != nil {
		return err
	}
	docs := strings.Split(string(data), "\n---\n")
	if len(docs) != len(objs) {
		return fmt.Errorf("deployments/%s: %d documents, want %d", file, len(docs), len(objs))
	}
	for i, doc := range docs {
		if err := yaml.UnmarshalStrict([]byte(doc), objs[i]); err != nil {
			return fmt.Errorf("decode deployments/%s, document %d: %w", file, i+1, err)
		}
	}
	return nil
}

func onlyContainer(ds *appsv1.DaemonSet) (*corev1.Container, error) {
	spec := &ds.Spec.Template.Spec
	if len(spec.Containers) != 1 {
		return nil, fmt.Errorf("DaemonSet %s: want one container, have %d", ds.Name, len(spec.Containers))
	}
	return &spec.Containers[0], nil
}

// metricsAddrFree checks that braidd's ops address is free on the host,
// whose network braidd shares: its readiness probe asks there.
func metricsAddrFree(config string) error {
	var conf struct {
		MetricsAddr string `json:"metricsAddr"`
	}
	if err := json.Unmarshal([]byte(config), &conf); err != nil {
		return fmt.Errorf("braidd.json of deployments/daemonset-thick.yaml: %w", err)
	}
	ln, err := net.Listen("tcp", conf.MetricsAddr)
	if err != nil {
		return fmt.Errorf("braidd's metricsAddr %q is taken on this host: %w", conf.MetricsAddr, err)
	}
	return ln.Close()
}

// pluginsStatic checks that the node's plugins run in braidd's image:
// braidd executes the delegates inside its container, whose image (FROM
// scratch, like the Dockerfile's) has no dynamic loader, so a dynamically
// linked plugin fails there with "fork/exec ...: no such file or
// directory". Upstream's release binaries are static.
func pluginsStatic() error {
	var errs []error
	for _, p := range referencePlugins {
		path := filepath.Join(hostBinDir, p)
		f, err := elf.Open(path)
		if err != nil {
			errs = append(errs, fmt.Errorf("plugin %s: %w", path, err))
			continue
		}
		for _, prog := range f.Progs {
			if prog.Type == elf.PT_INTERP {
				interp, _ := io.ReadAll(prog.Open())
				errs = append(errs, fmt.Errorf("plugin %s is dynamically linked (interpreter %s), braidd cannot run it in its image: build the reference plugins with CGO_ENABLED=0",
					path, strings.TrimRight(string(interp), "\x00")))
				break
			}
		}
		f.Close()
	}
	return errors.Join(errs...)
}

// podReady waits until the DaemonSet app has a pod and it is Ready.
func (c *cluster) podReady(ctx context.Context, app string) error {
	client, _, err := c.cp.Clients()
	if err != nil {
		return err
	}
	var name string
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, installTimeout, true, func(ctx context.Context) (bool, error) {
		pods, err := c.pods(ctx, app)
		if err != nil || len(pods) == 0 {
			return false, nil
		}
		name = pods[0].Name
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("no pod of DaemonSet %s/%s: %w", systemNamespace, app, err)
	}
	_, err = framework.WaitForPod(ctx, client, systemNamespace, name, installTimeout, framework.PodReady())
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

// waitFileHolds waits until the file at path contains want.
func waitFileHolds(ctx context.Context, path, want string, timeout time.Duration) error {
	var data []byte
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		var err error
		data, err = os.ReadFile(path)
		return err == nil && strings.Contains(string(data), want), nil
	})
	if err != nil {
		return fmt.Errorf("%s does not hold %s: %w; it holds:\n%s", path, want, err, data)
	}
	return nil
}
