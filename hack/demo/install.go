package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/yaml"

	"github.com/braid-cni/braid/e2e/framework"
)

const (
	cniBinDir     = "/opt/cni/bin"
	cniConfDir    = "/etc/cni/net.d"
	primaryFile   = "10-cluster.conflist"
	braidFile     = "00-braid.conflist"
	clusterCIDR   = "10.244.0.0/24"
	braidImage    = "braid:dev"
	workloadImage = "braid.local/workload:e2e"
	installWait   = 90 * time.Second
)

// primaryNetwork gives the node the network it has before braid, as a
// cluster network's installer would: the reference plugins in /opt/cni/bin
// and a bridge + host-local conflist in /etc/cni/net.d. Its leases live in
// the work directory.
func (d *demo) primaryNetwork(context.Context) error {
	plugins, err := filepath.Glob(filepath.Join(d.root, "bin", "plugins", "*"))
	if err != nil || len(plugins) == 0 {
		return fmt.Errorf("copy reference plugins: none in %s (run `make tools`)", filepath.Join(d.root, "bin", "plugins"))
	}
	for _, p := range plugins {
		if err := copyFile(p, filepath.Join(cniBinDir, filepath.Base(p)), 0o755); err != nil {
			return fmt.Errorf("copy plugin %s: %w", filepath.Base(p), err)
		}
	}
	ipam := map[string]any{
		"type": "host-local", "dataDir": workPath("leases"),
		"ranges": []any{[]any{map[string]any{"subnet": clusterCIDR}}},
		"routes": []any{map[string]any{"dst": "0.0.0.0/0"}},
	}
	bridge := map[string]any{"type": "bridge", "bridge": clusterNet, "isGateway": true, "ipMasq": false, "ipam": ipam}
	conf, _ := json.MarshalIndent(map[string]any{"cniVersion": "1.0.0", "name": "cluster", "plugins": []any{bridge}}, "", "  ")
	path := filepath.Join(cniConfDir, primaryFile)
	if err := os.WriteFile(path, append(conf, '\n'), 0o644); err != nil {
		return fmt.Errorf("write primary network %s: %w", path, err)
	}
	d.step("primary network in %s: bridge %s, host-local %s; %d reference plugins in %s",
		path, clusterNet, clusterCIDR, len(plugins), cniBinDir)
	return nil
}

// loadImages packs the sandbox image, braid's image (bin/braid and
// bin/braid-install, as the Dockerfile lays them out) and the workload
// image, and imports them into the node's containerd: there is no registry.
func (d *demo) loadImages(ctx context.Context) error {
	dir := workPath("images")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	pause, err := framework.BuildPauseImage(ctx, dir)
	if err != nil {
		return err
	}
	bin := filepath.Join(d.root, "bin")
	braid, err := framework.BuildImage(dir, braidImage, map[string]string{
		"/usr/src/braid/bin/braid":         filepath.Join(bin, "braid"),
		"/usr/src/braid/bin/braid-install": filepath.Join(bin, "braid-install"),
	}, []string{"/usr/src/braid/bin/braid-install"})
	if err != nil {
		return err
	}
	workload := filepath.Join(dir, "workload")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", workload, "./e2e/testdata/workload")
	cmd.Dir, cmd.Env = d.root, append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build workload: go build: %w: %s", err, out)
	}
	wl, err := framework.BuildImage(dir, workloadImage, map[string]string{"/workload": workload}, []string{"/workload"})
	if err != nil {
		return err
	}
	for _, img := range []string{pause, braid, wl} {
		if err := d.node.ImportImage(ctx, img); err != nil {
			return err
		}
	}
	d.step("images imported: %s, %s, %s", framework.PauseImage, braidImage, workloadImage)
	return nil
}

// installBraid applies deployments/ as an operator would and waits until the
// installer has written braid's config and the node's network is ready. The
// one change: without kube-proxy, the installer gets the API server's real
// address instead of the kubernetes service's.
func (d *demo) installBraid(ctx context.Context) error {
	admin := d.cp.AdminConfig()
	for _, f := range []string{"crd.yaml", "rbac.yaml", "policy.yaml"} {
		if err := framework.EnsureObjects(ctx, admin, filepath.Join(d.root, "deployments", f)); err != nil {
			return err
		}
	}
	ds, err := d.daemonSet()
	if err != nil {
		return err
	}
	if _, err := d.kube.AppsV1().DaemonSets(ds.Namespace).Create(ctx, ds, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create DaemonSet %s/%s: %w", ds.Namespace, ds.Name, err)
	}
	path := filepath.Join(cniConfDir, braidFile)
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, installWait, true, func(context.Context) (bool, error) {
		_, err := os.Stat(path)
		return err == nil, nil
	})
	if err != nil {
		return fmt.Errorf("wait for braid's installer to write %s: %w\n%s", path, err, d.installerEvents(ctx))
	}
	if err := d.node.WaitReady(ctx); err != nil {
		return err
	}
	d.step("braid installed from deployments/ (crd.yaml, rbac.yaml, policy.yaml, daemonset-thin.yaml): %s written, node Ready", path)
	return nil
}

// daemonSet is deployments/daemonset-thin.yaml with --api-server appended.
func (d *demo) daemonSet() (*appsv1.DaemonSet, error) {
	path := filepath.Join(d.root, "deployments", "daemonset-thin.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read DaemonSet: %w", err)
	}
	var ds appsv1.DaemonSet
	if err := yaml.UnmarshalStrict(data, &ds); err != nil {
		return nil, fmt.Errorf("decode %s: %w", path, err)
	}
	spec := &ds.Spec.Template.Spec
	if len(spec.Containers) != 1 {
		return nil, fmt.Errorf("%s: want one container, have %d", path, len(spec.Containers))
	}
	spec.Containers[0].Args = append(spec.Containers[0].Args, "--api-server="+d.cp.AdminConfig().Host)
	return &ds, nil
}

// installerEvents returns the events of braid's installer pods, for errors.
func (d *demo) installerEvents(ctx context.Context) string {
	pods, err := d.kube.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{LabelSelector: "app=braid"})
	if err != nil || len(pods.Items) == 0 {
		return fmt.Sprintf("no installer pod (%v)", err)
	}
	var out string
	for _, p := range pods.Items {
		out += fmt.Sprintf("pod %s/%s (%s): %s", p.Namespace, p.Name, p.Status.Phase,
			framework.PodEvents(ctx, d.kube, p.Namespace, p.Name))
	}
	return out
}

func copyFile(src, dst string, mode os.FileMode) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, data, mode)
}
