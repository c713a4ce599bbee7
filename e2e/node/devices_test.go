package node

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	"github.com/vishvananda/netlink"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/braid-cni/braid/devices"
	"github.com/braid-cni/braid/e2e/framework"
)

// vfResource is what the test device plugin advertises: host veth ends,
// named by their device IDs, standing in for SR-IOV virtual functions.
const (
	vfResource = "braid.test/vf"
	vfPlugin   = "braid-test-vfmove"
)

// deviceBacked: the chain a device-backed network runs on a real node.
// The test's device plugin registers with the kubelet and advertises three
// "VFs"; a pod requesting two and naming two NADs annotated with the
// resource gets, through the kubelet's allocation and its pod-resources
// API, one device each, moved into the pod under the names it asked for by
// a delegate that moves the host interface named by deviceID (as SR-IOV CNI
// moves a VF). network-status carries the device plugin's device-info;
// deleting the pod gives the devices back to the host and removes braid's
// device-info copies. A pod naming the network without requesting the
// resource gets an event saying so.
func deviceBacked(t *testing.T, m mode) {
	e := newEnv(t, m, "dev")
	ctx := t.Context()
	e.installPlugin("./e2e/testdata/plugins/vfmove", vfPlugin)
	ids := []string{"bvf0", "bvf1", "bvf2"}
	for _, id := range ids {
		hostVeth(t, id)
	}
	dp, err := framework.StartDevicePlugin(ctx, framework.DevicePluginOptions{Resource: vfResource, Devices: ids})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dp.Stop)
	waitAllocatable(t, vfResource, int64(len(ids)))

	e.deviceNAD("vf-a", vfResource, "10.89.7.0/24")
	e.deviceNAD("vf-b", vfResource, "10.89.8.0/24")
	e.podWith("two", `[{"name": "vf-a", "interface": "fast0"}, {"name": "vf-b", "interface": "fast1"}]`, requestDevices(vfResource, 2))
	pod := e.running("two")
	st := matchStatus(t, pod, []string{"eth0", "fast0", "fast1"})

	t.Logf("pod two: network-status %s", pod.Annotations[nadv1.NetworkStatusAnnot])
	allocs := dp.Allocations()
	if len(allocs) != 1 || len(allocs[0]) != 2 {
		t.Fatalf("the kubelet's Allocate calls: %v, want one of two devices", allocs)
	}
	given := slices.Sorted(slices.Values(allocs[0]))
	// Each network got its own allocated device, in sorted order, and
	// reports the device plugin's device-info for it.
	for i, ifName := range []string{"fast0", "fast1"} {
		info := st[ifName].DeviceInfo
		if info == nil || info.Type != nadv1.DeviceInfoTypePCI || info.Pci == nil || info.Pci.PciAddress != given[i] {
			t.Errorf("%s: device-info %+v, want the device plugin's for %s", ifName, info, given[i])
		}
	}
	for _, id := range ids {
		_, err := netlink.LinkByName(id)
		onHost := err == nil
		if slices.Contains(given, id) == onHost {
			t.Errorf("device %s: on the host %v, allocated to the pod %v", id, onHost, slices.Contains(given, id))
		}
	}
	if files := cniDeviceInfo(t); len(files) != 2 {
		t.Errorf("braid's device-info files while the pod runs: %v, want 2", files)
	}

	e.deletePod(ctx, "two")
	for _, id := range given {
		if _, err := netlink.LinkByName(id); err != nil {
			t.Errorf("device %s not back on the host after the pod was deleted: %v", id, err)
		}
	}
	if files := cniDeviceInfo(t); len(files) != 0 {
		t.Errorf("braid's device-info files after the pod was deleted: %v", files)
	}
	for _, net := range []string{"vf-a", "vf-b"} {
		if l := leases(net); len(l) != 0 {
			t.Errorf("network %s still leases %v", net, l)
		}
	}

	if m.pluginType == "braid-shim" {
		hotPlugDevice(t, e, dp, ids)
	}

	// The resource not requested: braid refuses with the allocation named,
	// and the pod waits.
	e.pod("norequest", "vf-a")
	want := "no device of resource " + vfResource + " is allocated to the pod"
	err = wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, podTimeout, true, func(ctx context.Context) (bool, error) {
		return strings.Contains(framework.PodEvents(ctx, e.kube, e.namespace, "norequest"), want), nil
	})
	if err != nil {
		t.Errorf("no event says %q; events:\n%s", want, framework.PodEvents(ctx, e.kube, e.namespace, "norequest"))
	} else {
		t.Logf("pod norequest: events:\n%s", framework.PodEvents(ctx, e.kube, e.namespace, "norequest"))
	}
	for _, id := range ids {
		if _, err := netlink.LinkByName(id); err != nil {
			t.Errorf("device %s left the host for a pod that was refused: %v", id, err)
		}
	}
}

// hotPlugDevice: in thick mode a pod that requested two devices and uses
// one gets the second moved in when a device-backed network is added to
// its annotation, and gives it back to the host when it is removed.
func hotPlugDevice(t *testing.T, e *env, dp *framework.DevicePlugin, ids []string) {
	e.podWith("plug", `[{"name": "vf-a", "interface": "fast0"}]`, requestDevices(vfResource, 2))
	pod := e.running("plug")
	st := matchStatus(t, pod, []string{"eth0", "fast0"})
	allocs := dp.Allocations()
	if len(allocs) != 2 || len(allocs[1]) != 2 {
		t.Fatalf("the kubelet's Allocate calls: %v, want a second one of two devices", allocs)
	}
	given := slices.Sorted(slices.Values(allocs[1]))
	if info := st["fast0"].DeviceInfo; info == nil || info.Pci == nil || info.Pci.PciAddress != given[0] {
		t.Fatalf("fast0: device-info %+v, want %s's", info, given[0])
	}
	if _, err := netlink.LinkByName(given[1]); err != nil {
		t.Fatalf("device %s, allocated but not used, is not on the host: %v", given[1], err)
	}
	before := pod.Status.ContainerStatuses[0]

	e.setNetworks("plug", `[{"name": "vf-a", "interface": "fast0"}, {"name": "vf-b", "interface": "fast1"}]`)
	pod = e.waitStatus("plug", []string{"eth0", "fast0", "fast1"})
	st = matchStatus(t, pod, []string{"eth0", "fast0", "fast1"})
	if info := st["fast1"].DeviceInfo; info == nil || info.Pci == nil || info.Pci.PciAddress != given[1] {
		t.Errorf("hot-plugged fast1: device-info %+v, want the second device %s's", info, given[1])
	}
	if _, err := netlink.LinkByName(given[1]); err == nil {
		t.Errorf("device %s still on the host after fast1 was hot-plugged", given[1])
	}
	t.Logf("pod plug after the hot-add: network-status %s", pod.Annotations[nadv1.NetworkStatusAnnot])

	e.setNetworks("plug", `[{"name": "vf-a", "interface": "fast0"}]`)
	pod = e.waitStatus("plug", []string{"eth0", "fast0"})
	if _, err := netlink.LinkByName(given[1]); err != nil {
		t.Errorf("device %s not back on the host after fast1 was removed: %v", given[1], err)
	}
	if files := cniDeviceInfo(t); len(files) != 1 {
		t.Errorf("braid's device-info files after fast1 was removed: %v, want fast0's alone", files)
	}
	if after := pod.Status.ContainerStatuses[0]; after.RestartCount != 0 || after.ContainerID != before.ContainerID {
		t.Errorf("pod plug restarted: container %s (restarts %d), was %s", after.ContainerID, after.RestartCount, before.ContainerID)
	}
	e.deletePod(t.Context(), "plug")
	for _, id := range given {
		if _, err := netlink.LinkByName(id); err != nil {
			t.Errorf("device %s not back on the host after pod plug was deleted: %v", id, err)
		}
	}
	for _, net := range []string{"vf-a", "vf-b"} {
		if l := leases(net); len(l) != 0 {
			t.Errorf("network %s still leases %v after pod plug was deleted", net, l)
		}
	}
}

// installPlugin builds a test CNI plugin into the node's bin dir, where
// braid (and braidd, through its hostPath mount) finds delegates.
func (e *env) installPlugin(pkg, name string) {
	e.t.Helper()
	bin, err := shared.build(e.t.Context(), pkg, name)
	if err != nil {
		e.t.Fatal(err)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		e.t.Fatal(err)
	}
	dst := filepath.Join(hostBinDir, name)
	if err := os.WriteFile(dst, data, 0o755); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = os.Remove(dst) })
}

// hostVeth creates a veth pair on the host, id and id+"p", and deletes it
// when t ends. A pair of those names that a killed run left (the node's
// recovery undoes the node, not the links a scenario made) is deleted
// first.
func hostVeth(t *testing.T, id string) {
	t.Helper()
	deleteLink(id)
	deleteLink(id + "p")
	la := netlink.NewLinkAttrs()
	la.Name = id
	if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: la, PeerName: id + "p"}); err != nil {
		t.Fatalf("create veth %s: %v", id, err)
	}
	t.Cleanup(func() { deleteLink(id); deleteLink(id + "p") })
}

// deviceNAD is a network of the resource whose delegate moves the
// allocated host interface into the pod.
func (e *env) deviceNAD(name, resourceName, subnet string) {
	e.t.Helper()
	e.nadWith(name, map[string]string{devices.ResourceNameKey: resourceName}, map[string]any{
		"cniVersion": "1.0.0", "name": name, "type": vfPlugin,
		"ipam": map[string]any{"type": "host-local", "dataDir": shared.dataDir, "ranges": []any{[]any{map[string]any{"subnet": subnet}}}},
	})
}

func requestDevices(resourceName string, n int64) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		q := *resource.NewQuantity(n, resource.DecimalSI)
		p.Spec.Containers[0].Resources.Limits = corev1.ResourceList{corev1.ResourceName(resourceName): q}
	}
}

// waitAllocatable waits until the node offers n of the resource.
func waitAllocatable(t *testing.T, resourceName string, n int64) {
	t.Helper()
	kube, _, err := shared.cp.Clients()
	if err != nil {
		t.Fatal(err)
	}
	var have string
	err = wait.PollUntilContextTimeout(t.Context(), 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		node, err := kube.CoreV1().Nodes().Get(ctx, framework.NodeName, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		q := node.Status.Allocatable[corev1.ResourceName(resourceName)]
		have = q.String()
		return q.Value() == n, nil
	})
	if err != nil {
		t.Fatalf("node allocatable %s = %s, want %d: %v", resourceName, have, n, err)
	}
}

// cniDeviceInfo lists the device-info files braid handed delegates.
func cniDeviceInfo(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(devices.DefaultInfoDir, "cni"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}
