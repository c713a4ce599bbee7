package framework

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
	"k8s.io/client-go/kubernetes"

	"github.com/braid-cni/braid/devices"
)

const (
	// BraidImage is the image the DaemonSets of deployments/ run.
	BraidImage = "braid:dev"
	// BraidConfig is the conflist both modes write in the node's CNI
	// config directory.
	BraidConfig     = cniConfDir + "/00-braid.conflist"
	systemNamespace = "kube-system"
	installTimeout  = 90 * time.Second
)

// Mode is one way of running braid on a node, each installed from its own
// deployments/ manifests. In thin mode an installer pod puts the braid
// plugin on the node, which asks the API server itself; in thick mode the
// braidd daemon installs braid-shim and serves it from its caches of pods
// and NADs (hot-plug, metrics and the caches live only there).
type Mode string

const (
	Thin  Mode = "thin"
	Thick Mode = "thick"
)

// ParseMode returns the mode named s.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case Thin, Thick:
		return m, nil
	}
	return "", fmt.Errorf("unknown mode %q: want %s or %s", s, Thin, Thick)
}

// App names the mode's DaemonSet in kube-system and labels its pods.
func (m Mode) App() string {
	if m == Thick {
		return "braidd"
	}
	return "braid"
}

// Manifests are the files of deployments/ the mode applies, in order; the
// last one holds its DaemonSet.
func (m Mode) Manifests() []string {
	if m == Thick {
		return []string{"crd.yaml", "rbac-thick.yaml", "policy.yaml", "daemonset-thick.yaml"}
	}
	return []string{"crd.yaml", "rbac.yaml", "policy.yaml", "daemonset-thin.yaml"}
}

// BraidHostDirs are the host directories braid uses beyond the CNI ones a
// node saves and restores: the journal, braidd's socket and NAD config
// directories (hostPath volumes of deployments/daemonset-thick.yaml) and
// the device-info directory of device-backed networks. Whoever installs
// braid removes those that did not exist before.
func BraidHostDirs() []string {
	return []string{"/var/lib/cni/braid", "/run/braid", "/etc/cni/multus/net.d", devices.DefaultInfoDir}
}

// BuildBraidImage packs BraidImage into dir from the binaries in binDir,
// laid out under /usr/src/braid/bin as the Dockerfile does, and returns
// its path.
func BuildBraidImage(dir, binDir string) (string, error) {
	files := map[string]string{}
	for _, name := range []string{"braid", "braid-shim", "braid-install", "braidd", "braid-webhook"} {
		files["/usr/src/braid/bin/"+name] = filepath.Join(binDir, name)
	}
	return BuildImage(dir, BraidImage, files, []string{"/usr/src/braid/bin/braid-install"})
}

// InstallOptions adapt the manifests of deployments/ to a framework node.
type InstallOptions struct {
	Mode Mode
	// Args are appended to the DaemonSet container's arguments.
	Args []string
	// Plugins are the delegate plugins in /opt/cni/bin the pods will use.
	// braidd runs them inside its image (FROM scratch, as the Dockerfile's),
	// so in thick mode InstallBraid checks that they are static.
	Plugins []string
}

// InstallBraid applies deployments/ for the mode as an operator would, with
// one change: the node has no kube-proxy, so the DaemonSet's container is
// told the API server's real address instead of the kubernetes service's.
// It returns once BraidConfig is written; in thick mode once braidd is
// Ready (its caches synced) and the config forwards to it.
func InstallBraid(ctx context.Context, cp *ControlPlane, opts InstallOptions) error {
	if err := installBraid(ctx, cp, opts); err != nil {
		return fmt.Errorf("install braid in %s mode: %w", opts.Mode, err)
	}
	return nil
}

func installBraid(ctx context.Context, cp *ControlPlane, opts InstallOptions) error {
	files := opts.Mode.Manifests()
	cm, ds, err := daemonSetOf(files[len(files)-1])
	if err != nil {
		return err
	}
	if opts.Mode == Thick {
		if err := errors.Join(metricsAddrFree(cm), pluginsStatic(opts.Plugins)); err != nil {
			return err
		}
	}
	spec := &ds.Spec.Template.Spec
	if len(spec.Containers) != 1 {
		return fmt.Errorf("DaemonSet %s: want one container, have %d", ds.Name, len(spec.Containers))
	}
	spec.Containers[0].Args = append(spec.Containers[0].Args, "--api-server="+cp.AdminConfig().Host)
	spec.Containers[0].Args = append(spec.Containers[0].Args, opts.Args...)
	for _, f := range files[:len(files)-1] {
		if err := EnsureObjects(ctx, cp.AdminConfig(), filepath.Join("deployments", f)); err != nil {
			return err
		}
	}
	client, _, err := cp.Clients()
	if err != nil {
		return err
	}
	if cm != nil {
		if err := create(ctx, client.CoreV1().ConfigMaps(cm.Namespace).Create, cm); err != nil {
			return fmt.Errorf("create ConfigMap %s/%s: %w", cm.Namespace, cm.Name, err)
		}
	}
	if _, err := client.AppsV1().DaemonSets(ds.Namespace).Create(ctx, ds, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create DaemonSet %s/%s: %w", ds.Namespace, ds.Name, err)
	}
	want := `"kubeconfig"` // thin: braid's config names the installer's kubeconfig
	if opts.Mode == Thick {
		if _, err := WaitForAppPod(ctx, client, ds.Namespace, ds.Name, installTimeout, PodReady()); err != nil {
			return err
		}
		want = `"daemonSocketDir"`
	}
	if err := waitFileHolds(ctx, BraidConfig, want, installTimeout); err != nil {
		return fmt.Errorf("%w\n%s", err, daemonSetEvents(ctx, client, ds))
	}
	return nil
}

// daemonSetOf decodes the ConfigMap (if any) and the DaemonSet of a
// deployments/ file.
func daemonSetOf(file string) (*corev1.ConfigMap, *appsv1.DaemonSet, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, nil, err
	}
	objs, err := decodeFile(filepath.Join(root, "deployments", file))
	if err != nil {
		return nil, nil, fmt.Errorf("decode deployments/%s: %w", file, err)
	}
	var cm *corev1.ConfigMap
	var ds *appsv1.DaemonSet
	for _, obj := range objs {
		switch o := obj.(type) {
		case *corev1.ConfigMap:
			cm = o
		case *appsv1.DaemonSet:
			ds = o
		default:
			return nil, nil, fmt.Errorf("deployments/%s: unexpected %s", file, obj.GetObjectKind().GroupVersionKind().Kind)
		}
	}
	if ds == nil {
		return nil, nil, fmt.Errorf("deployments/%s: no DaemonSet", file)
	}
	return cm, ds, nil
}

// metricsAddrFree checks that braidd's ops address is free on the host,
// whose network braidd shares: its readiness probe asks there.
func metricsAddrFree(cm *corev1.ConfigMap) error {
	if cm == nil {
		return errors.New("deployments/daemonset-thick.yaml: no ConfigMap with braidd.json")
	}
	var conf struct {
		MetricsAddr string `json:"metricsAddr"`
	}
	if err := json.Unmarshal([]byte(cm.Data["braidd.json"]), &conf); err != nil {
		return fmt.Errorf("braidd.json of deployments/daemonset-thick.yaml: %w", err)
	}
	ln, err := net.Listen("tcp", conf.MetricsAddr)
	if err != nil {
		return fmt.Errorf("braidd's metricsAddr %q is taken on this host: %w", conf.MetricsAddr, err)
	}
	return ln.Close()
}

// pluginsStatic checks that the named plugins in /opt/cni/bin run in
// braidd's image: it has no dynamic loader, so a dynamically linked plugin
// fails there with "fork/exec ...: no such file or directory". Upstream's
// release binaries are static.
func pluginsStatic(plugins []string) error {
	var errs []error
	for _, p := range plugins {
		path := filepath.Join(cniBinDir, p)
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

// WaitForAppPod waits until namespace has a pod labelled app=<app> (the
// label of the DaemonSets and Deployments of deployments/) and it meets
// check, at most timeout each, and returns it.
func WaitForAppPod(ctx context.Context, client kubernetes.Interface, namespace, app string, timeout time.Duration, check PodCheck) (*corev1.Pod, error) {
	var name string
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		list, err := client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: "app=" + app})
		if err != nil || len(list.Items) == 0 {
			return false, nil
		}
		name = list.Items[0].Name
		return true, nil
	})
	if err != nil {
		return nil, fmt.Errorf("no pod app=%s in %s: %w", app, namespace, err)
	}
	return WaitForPod(ctx, client, namespace, name, timeout, check)
}

// daemonSetEvents returns the events of the DaemonSet's pods, for errors.
func daemonSetEvents(ctx context.Context, client kubernetes.Interface, ds *appsv1.DaemonSet) string {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	list, err := client.CoreV1().Pods(ds.Namespace).List(ctx, metav1.ListOptions{LabelSelector: "app=" + ds.Name})
	if err != nil || len(list.Items) == 0 {
		return fmt.Sprintf("no pod of DaemonSet %s/%s (%v)", ds.Namespace, ds.Name, err)
	}
	var b strings.Builder
	for _, p := range list.Items {
		fmt.Fprintf(&b, "pod %s/%s (%s): %s", p.Namespace, p.Name, p.Status.Phase, PodEvents(ctx, client, p.Namespace, p.Name))
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
