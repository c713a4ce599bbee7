package braidd

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/braid-cni/braid/devices"
	"github.com/braid-cni/braid/netconf"
)

// TestThickManifest keeps deployments/daemonset-thick.yaml honest: its
// config parses as braidd's, and every path the config names is a host
// path mounted at the same place in the container.
func TestThickManifest(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "deployments", "daemonset-thick.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	docs := strings.Split(string(data), "\n---\n")
	if len(docs) != 2 {
		t.Fatalf("want a ConfigMap and a DaemonSet, got %d documents", len(docs))
	}
	var cm corev1.ConfigMap
	if err := yaml.UnmarshalStrict([]byte(docs[0]), &cm); err != nil {
		t.Fatalf("ConfigMap: %v", err)
	}
	var ds appsv1.DaemonSet
	if err := yaml.UnmarshalStrict([]byte(docs[1]), &ds); err != nil {
		t.Fatalf("DaemonSet: %v", err)
	}
	conf, err := netconf.ParseDaemon([]byte(cm.Data["braidd.json"]), func(string) string { return "node1" }, os.Hostname)
	if err != nil {
		t.Fatalf("braidd.json: %v", err)
	}
	if !conf.Autoconfig || conf.MetricsAddr == "" {
		t.Errorf("config = %+v, want autoconfig and metrics on", conf)
	}
	spec := ds.Spec.Template.Spec
	if spec.ServiceAccountName != "braidd" || !spec.HostNetwork || len(spec.Containers) != 1 {
		t.Fatalf("pod spec: serviceAccount %q hostNetwork %v containers %d", spec.ServiceAccountName, spec.HostNetwork, len(spec.Containers))
	}
	mounts := map[string]string{} // mount path -> volume
	for _, m := range spec.Containers[0].VolumeMounts {
		mounts[m.MountPath] = m.Name
	}
	hostPaths := map[string]string{} // volume -> host path
	for _, v := range spec.Volumes {
		if v.HostPath != nil {
			hostPaths[v.Name] = v.HostPath.Path
		}
	}
	for key, dir := range map[string]string{
		"socketDir": conf.SocketDir, "cniConfigDir": conf.CNIConfigDir, "binDir": conf.BinDir,
		"confDir": conf.ConfDir, "cniDir": filepath.Dir(conf.CNIDir),
		"podResourcesSocket": filepath.Dir(orDefault(conf.PodResourcesSocket, devices.DefaultPodResourcesSocket)),
		"deviceCheckpoint":   filepath.Dir(orDefault(conf.DeviceCheckpoint, devices.DefaultCheckpointFile)),
		"deviceInfoDir":      orDefault(conf.DeviceInfoDir, devices.DefaultInfoDir),
	} {
		vol, ok := mounts[dir]
		if !ok || hostPaths[vol] != dir {
			t.Errorf("%s %s: mounted from host path %q, want the same path", key, dir, hostPaths[vol])
		}
	}
	cmd := spec.Containers[0].Command
	if !slices.Contains(cmd, "--config=/etc/braid/braidd.json") || mounts["/etc/braid"] != "config" {
		t.Errorf("command %v does not read the mounted ConfigMap", cmd)
	}
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
