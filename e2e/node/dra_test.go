package node

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	"github.com/vishvananda/netlink"
	corev1 "k8s.io/api/core/v1"
	resourceapi "k8s.io/api/resource/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/braid-cni/braid/devices"
	"github.com/braid-cni/braid/e2e/framework"
)

// draResource is the resourceName the test DRA driver's devices carry and
// the DRA networks' NADs name.
const draResource = "braid.test/dra-vf"

// draNetworks: the chain a device-backed network runs with Dynamic
// Resource Allocation on a real node. The test's DRA driver registers with
// the kubelet and publishes three "VFs" (host veth ends, named by their
// device IDs) in a ResourceSlice; a pod whose claim template asks for two
// and naming two NADs annotated with the resource gets its claim generated
// by the controller manager, allocated by the scheduler and prepared by the
// kubelet through the driver. braid gives each network one allocated
// device, in deviceID order, moved into the pod under the name it asked for
// by a delegate that moves the host interface named by deviceID, and writes
// the interface name, IPs and MAC into the claim's status.devices.
// Deleting the pod gives the devices back to the host, and the kubelet
// unprepares the claim.
func draNetworks(t *testing.T, m mode) {
	e := newEnv(t, m, "dra")
	ctx := t.Context()
	e.installPlugin("./e2e/testdata/plugins/vfmove", vfPlugin)
	ids := []string{"bdra0", "bdra1", "bdra2"}
	macs := map[string]string{} // device ID → MAC: a veth keeps it in the pod
	var devs []framework.DRADevice
	for i, id := range ids {
		hostVeth(t, id)
		link, err := netlink.LinkByName(id)
		if err != nil {
			t.Fatal(err)
		}
		macs[id] = link.Attrs().HardwareAddr.String()
		// Device names are not the IDs, and sort the other way (vf-0 is
		// bdra2): braid must read the attribute and order by it, not by
		// the allocation, which takes the slice's first devices.
		devs = append(devs, framework.DRADevice{Name: fmt.Sprintf("vf-%d", len(ids)-1-i), ResourceName: draResource, DeviceID: id})
	}
	slices.Reverse(devs)
	driver := m.name + ".dra.braid.test"
	class := e.deviceClass("braid-dra-"+m.name, driver)
	start := time.Now()
	drv, err := framework.StartDRADriver(ctx, framework.DRADriverOptions{Driver: driver, NodeName: framework.NodeName, Devices: devs, Kube: e.kube})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("DRA driver %s registered and published in %s", driver, time.Since(start).Round(time.Millisecond))
	t.Cleanup(func() {
		if errs := drv.Errors(); len(errs) > 0 {
			t.Logf("DRA driver's background errors: %v", errs)
		}
		if err := drv.Stop(); err != nil {
			t.Error(err)
		}
	})
	// Before the driver stops: the kubelet unprepares through it.
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		e.deletePods(cctx)
	})

	tmpl := e.claimTemplate("vfs", class, 2)
	e.deviceNAD("dra-a", draResource, "10.89.21.0/24")
	e.deviceNAD("dra-b", draResource, "10.89.22.0/24")
	e.podWith("dra", `[{"name": "dra-a", "interface": "dra0"}, {"name": "dra-b", "interface": "dra1"}]`, useClaimTemplate("vfs", tmpl))
	pod := e.running("dra")
	st := matchStatus(t, pod, []string{"eth0", "dra0", "dra1"})
	t.Logf("pod dra: network-status %s", pod.Annotations[nadv1.NetworkStatusAnnot])

	claim := e.podClaim(pod, "vfs")
	byName := map[string]string{} // device name → device ID
	for _, d := range devs {
		byName[d.Name] = d.DeviceID
	}
	given := map[string]string{} // device ID → device name, of those allocated
	for _, r := range claim.Status.Allocation.Devices.Results {
		if r.Driver != driver || byName[r.Device] == "" {
			t.Fatalf("claim %s allocated %s/%s/%s, not one of the driver's devices", claim.Name, r.Driver, r.Pool, r.Device)
		}
		given[byName[r.Device]] = r.Device
	}
	allocated := slices.Sorted(maps.Keys(given))
	t.Logf("claim %s: the scheduler allocated %v (device IDs %v)", claim.Name, given, allocated)
	if len(allocated) != 2 {
		t.Fatalf("claim %s: %d devices allocated, want 2", claim.Name, len(allocated))
	}
	// Each network got its own allocated device, in deviceID order: the
	// interface in the pod is that veth end, which keeps its MAC.
	want := map[string]string{"dra0": allocated[0], "dra1": allocated[1]} // interface → device ID
	for ifName, id := range want {
		if st[ifName].Mac != macs[id] {
			t.Errorf("%s: MAC %s, want %s of device %s", ifName, st[ifName].Mac, macs[id], id)
		}
	}
	for _, id := range ids {
		_, err := netlink.LinkByName(id)
		onHost := err == nil
		if _, inPod := given[id]; inPod == onHost {
			t.Errorf("device %s: on the host %v, allocated to the pod %v", id, onHost, inPod)
		}
	}
	e.checkNetworkData(claim, given, want, st)
	if !slices.ContainsFunc(drv.Prepared(), func(c framework.DRAClaim) bool {
		return c.UID == claim.UID && sameSet(c.Devices, slices.Collect(maps.Values(given)))
	}) {
		t.Errorf("the driver prepared %+v, not claim %s (%s) with %v", drv.Prepared(), claim.Name, claim.UID, given)
	}

	t.Logf("the driver prepared %+v", drv.Prepared())

	e.deletePod(ctx, "dra")
	for _, id := range allocated {
		if _, err := netlink.LinkByName(id); err != nil {
			t.Errorf("device %s not back on the host after the pod was deleted: %v", id, err)
		}
	}
	for _, net := range []string{"dra-a", "dra-b"} {
		if l := leases(net); len(l) != 0 {
			t.Errorf("network %s still leases %v", net, l)
		}
	}
	// The kubelet unprepares once the pod's containers are gone, which
	// may be after the API object is.
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, podTimeout, true, func(context.Context) (bool, error) {
		return slices.ContainsFunc(drv.Unprepared(), func(c framework.DRAClaim) bool { return c.UID == claim.UID }), nil
	})
	if err != nil {
		t.Errorf("the driver unprepared %+v, not claim %s (%s): %v", drv.Unprepared(), claim.Name, claim.UID, err)
	} else {
		t.Logf("the driver unprepared %+v", drv.Unprepared())
	}
}

// checkNetworkData waits until the claim's status.devices holds, for each
// allocated device, the interface it became (want: interface → device ID)
// with the IPs and MAC network-status reports.
func (e *env) checkNetworkData(claim *resourceapi.ResourceClaim, given, want map[string]string, st map[string]nadv1.NetworkStatus) {
	e.t.Helper()
	var problems []string
	var stored *resourceapi.ResourceClaim
	err := wait.PollUntilContextTimeout(e.t.Context(), 200*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		var err error
		stored, err = e.kube.ResourceV1().ResourceClaims(claim.Namespace).Get(ctx, claim.Name, metav1.GetOptions{})
		if err != nil {
			problems = []string{err.Error()}
			return false, nil
		}
		problems = nil
		for ifName, id := range want {
			problems = append(problems, networkDataProblems(stored, given[id], ifName, st[ifName])...)
		}
		return len(problems) == 0, nil
	})
	if err != nil {
		e.t.Errorf("claim %s status.devices %+v: %s", claim.Name, stored.Status.Devices, strings.Join(problems, "; "))
		return
	}
	for _, d := range stored.Status.Devices {
		e.t.Logf("claim %s: device %s networkData %+v", claim.Name, d.Device, *d.NetworkData)
	}
}

// networkDataProblems compares the networkData of device in the claim
// with the interface's network-status.
func networkDataProblems(claim *resourceapi.ResourceClaim, device, ifName string, st nadv1.NetworkStatus) []string {
	i := slices.IndexFunc(claim.Status.Devices, func(d resourceapi.AllocatedDeviceStatus) bool { return d.Device == device })
	if i < 0 || claim.Status.Devices[i].NetworkData == nil {
		return []string{"no networkData for device " + device}
	}
	nd := claim.Status.Devices[i].NetworkData
	var ips []string
	for _, cidr := range nd.IPs {
		ips = append(ips, strings.Split(cidr, "/")[0])
	}
	var out []string
	if nd.InterfaceName != ifName {
		out = append(out, fmt.Sprintf("device %s: interface %q, want %s", device, nd.InterfaceName, ifName))
	}
	if len(st.IPs) == 0 || !sameSet(ips, st.IPs) {
		out = append(out, fmt.Sprintf("device %s: IPs %v, network-status has %v", device, nd.IPs, st.IPs))
	}
	if nd.HardwareAddress != st.Mac {
		out = append(out, fmt.Sprintf("device %s: MAC %q, network-status has %s", device, nd.HardwareAddress, st.Mac))
	}
	if c := apimeta.FindStatusCondition(claim.Status.Devices[i].Conditions, devices.ConditionReady); c == nil || c.Status != metav1.ConditionTrue || !strings.Contains(c.Message, ifName) {
		out = append(out, fmt.Sprintf("device %s: conditions %+v, want Ready True naming %s", device, claim.Status.Devices[i].Conditions, ifName))
	}
	return out
}

// deviceClass creates a cluster-wide DeviceClass of the driver's devices,
// deleted when the test ends.
func (e *env) deviceClass(name, driver string) string {
	e.t.Helper()
	dc := &resourceapi.DeviceClass{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: resourceapi.DeviceClassSpec{Selectors: []resourceapi.DeviceSelector{{
			CEL: &resourceapi.CELDeviceSelector{Expression: fmt.Sprintf("device.driver == %q", driver)},
		}}},
	}
	if _, err := e.kube.ResourceV1().DeviceClasses().Create(e.t.Context(), dc, metav1.CreateOptions{}); err != nil {
		e.t.Fatalf("create DeviceClass %s: %v", name, err)
	}
	e.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := e.kube.ResourceV1().DeviceClasses().Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
			e.t.Errorf("delete DeviceClass %s: %v", name, err)
		}
	})
	return name
}

// claimTemplate creates a ResourceClaimTemplate asking for n devices of
// the class, deleted when the test ends.
func (e *env) claimTemplate(name, class string, n int64) string {
	e.t.Helper()
	tmpl := &resourceapi.ResourceClaimTemplate{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: e.namespace},
		Spec: resourceapi.ResourceClaimTemplateSpec{Spec: resourceapi.ResourceClaimSpec{Devices: resourceapi.DeviceClaim{
			Requests: []resourceapi.DeviceRequest{{Name: "vf", Exactly: &resourceapi.ExactDeviceRequest{
				DeviceClassName: class, AllocationMode: resourceapi.DeviceAllocationModeExactCount, Count: n,
			}}},
		}}},
	}
	templates := e.kube.ResourceV1().ResourceClaimTemplates(e.namespace)
	if _, err := templates.Create(e.t.Context(), tmpl, metav1.CreateOptions{}); err != nil {
		e.t.Fatalf("create ResourceClaimTemplate %s/%s: %v", e.namespace, name, err)
	}
	e.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = templates.Delete(ctx, name, metav1.DeleteOptions{})
	})
	return name
}

// useClaimTemplate gives the pod a claim named claim from the template,
// used by its container.
func useClaimTemplate(claim, template string) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Spec.ResourceClaims = []corev1.PodResourceClaim{{Name: claim, ResourceClaimTemplateName: &template}}
		p.Spec.Containers[0].Resources.Claims = []corev1.ResourceClaim{{Name: claim}}
	}
}

// podClaim reads the ResourceClaim generated for the pod's claim.
func (e *env) podClaim(pod *corev1.Pod, podClaim string) *resourceapi.ResourceClaim {
	e.t.Helper()
	i := slices.IndexFunc(pod.Status.ResourceClaimStatuses, func(s corev1.PodResourceClaimStatus) bool { return s.Name == podClaim })
	if i < 0 || pod.Status.ResourceClaimStatuses[i].ResourceClaimName == nil {
		e.t.Fatalf("pod %s: no ResourceClaim generated for %s: %+v", pod.Name, podClaim, pod.Status.ResourceClaimStatuses)
	}
	name := *pod.Status.ResourceClaimStatuses[i].ResourceClaimName
	claim, err := e.kube.ResourceV1().ResourceClaims(e.namespace).Get(e.t.Context(), name, metav1.GetOptions{})
	if err != nil {
		e.t.Fatalf("get ResourceClaim %s/%s of pod %s: %v", e.namespace, name, pod.Name, err)
	}
	if claim.Status.Allocation == nil || !slices.ContainsFunc(claim.Status.ReservedFor, func(r resourceapi.ResourceClaimConsumerReference) bool {
		return r.UID == pod.UID
	}) {
		e.t.Fatalf("ResourceClaim %s/%s of a running pod is not allocated and reserved for it: %+v", e.namespace, name, claim.Status)
	}
	return claim
}
