package install

import (
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// TestDaemonSetManifest keeps deployments/daemonset-thin.yaml in step with
// the installer: its flags parse, and every path they name is inside the
// hostPath mount it needs, as the host sees it.
func TestDaemonSetManifest(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "deployments", "daemonset-thin.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var ds appsv1.DaemonSet
	if err := yaml.UnmarshalStrict(data, &ds); err != nil {
		t.Fatalf("decode daemonset-thin.yaml: %v", err)
	}
	spec := ds.Spec.Template.Spec
	if ds.Kind != "DaemonSet" || ds.Name != "braid" || ds.Namespace != "kube-system" {
		t.Errorf("kind, name, namespace = %s, %s, %s", ds.Kind, ds.Name, ds.Namespace)
	}
	if spec.ServiceAccountName != "braid" || !spec.HostNetwork {
		t.Errorf("serviceAccountName, hostNetwork = %q, %v; want braid, true", spec.ServiceAccountName, spec.HostNetwork)
	}
	if len(spec.Containers) != 1 {
		t.Fatalf("containers = %d, want 1", len(spec.Containers))
	}
	c := spec.Containers[0]
	if len(c.Command) == 0 || c.Command[0] != "/usr/src/braid/bin/braid-install" {
		t.Fatalf("command = %q", c.Command)
	}
	env := map[string]string{"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}
	getenv := func(k string) string { return env[k] }
	s, err := ParseFlags("braid-install", append(c.Command[1:], c.Args...), getenv, io.Discard)
	if err != nil {
		t.Fatalf("the manifest's flags do not parse: %v", err)
	}
	binHost := hostPathOf(t, spec, c, s.CNIBinDir)
	confHost := hostPathOf(t, spec, c, s.CNIConfDir)
	if binHost != "/opt/cni/bin" || confHost != "/etc/cni/net.d" {
		t.Errorf("hostPaths = %s, %s; want /opt/cni/bin, /etc/cni/net.d", binHost, confHost)
	}
	if s.Options.HostConfDir != confHost {
		t.Errorf("--host-cni-conf-dir %s, but %s is mounted from %s", s.Options.HostConfDir, s.CNIConfDir, confHost)
	}
	// braid looks its delegates up in binDir: the primary's plugins sit
	// next to braid in the host's CNI bin directory.
	if bins := strings.Split(s.Options.BinDir, ":"); !slices.Contains(bins, binHost) {
		t.Errorf("--bin-dir %s does not hold %s, where braid's binary goes", s.Options.BinDir, binHost)
	}
	if !strings.HasPrefix(s.Options.Kubeconfig, confHost+"/") {
		t.Errorf("--host-kubeconfig %s is not below %s", s.Options.Kubeconfig, confHost)
	}
	checkSecurity(t, c)
}

// hostPathOf returns the hostPath volume mounted at mountPath in c.
func hostPathOf(t *testing.T, spec corev1.PodSpec, c corev1.Container, mountPath string) string {
	t.Helper()
	for _, m := range c.VolumeMounts {
		if m.MountPath != mountPath {
			continue
		}
		for _, v := range spec.Volumes {
			if v.Name == m.Name && v.HostPath != nil {
				return v.HostPath.Path
			}
		}
		t.Fatalf("volume %s mounted at %s is not a hostPath", m.Name, mountPath)
	}
	t.Fatalf("nothing mounted at %s", mountPath)
	return ""
}

func checkSecurity(t *testing.T, c corev1.Container) {
	t.Helper()
	sc := c.SecurityContext
	if sc == nil || sc.RunAsUser == nil || *sc.RunAsUser != 0 || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.Capabilities == nil ||
		!slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0 {
		t.Errorf("securityContext = %+v; want root, read-only root filesystem, no privilege escalation, all capabilities dropped", sc)
	}
}
