package e2e

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	resourceapi "k8s.io/api/resource/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/braid-cni/braid/devices"
)

// TestDRADevices: with Dynamic Resource Allocation the pod's devices are in
// its ResourceClaims. A ResourceSlice publishes devices with the
// k8s.cni.cncf.io/resourceName and deviceID attributes; the pod's claim is
// allocated two of them (and a device that is no network device), written
// here as the scheduler would (with the node selector of a node-local
// slice, which Kubernetes 1.36+ reads to allow braid's node-bound token
// "associated-node:update" on resourceclaims/driver); there is no kubelet socket and no
// checkpoint. braid hands the two devices to the two device-backed
// networks in order, and writes what each became (interface, IPs, MAC) into
// the claim's status.devices[].networkData, with braid's least-privilege
// RBAC in both modes.
func TestDRADevices(t *testing.T) {
	inModes(t, func(t *testing.T, mode string) {
		d := newDeviceNode(t, mode)
		ctx := t.Context()
		resource := d.kube.ResourceV1()
		driver := fmt.Sprintf("net-%d.braid.test", d.id)
		slice := &resourceapi.ResourceSlice{
			ObjectMeta: metav1.ObjectMeta{Name: driver},
			Spec: resourceapi.ResourceSliceSpec{
				Driver: driver, NodeName: ptr("node1"),
				Pool: resourceapi.ResourcePool{Name: "node1", Generation: 1, ResourceSliceCount: 1},
				Devices: []resourceapi.Device{
					netDevice("vf1", "example.com/vf", "0000:01:00.2"),
					netDevice("vf0", "example.com/vf", "0000:01:00.1"),
					{Name: "gpu0"},
				},
			},
		}
		if _, err := resource.ResourceSlices().Create(ctx, slice, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create ResourceSlice: %v", err)
		}
		t.Cleanup(func() {
			_ = resource.ResourceSlices().Delete(context.Background(), slice.Name, metav1.DeleteOptions{})
		})
		claim := &resourceapi.ResourceClaim{
			ObjectMeta: metav1.ObjectMeta{Name: "net", Namespace: d.namespace},
			Spec: resourceapi.ResourceClaimSpec{Devices: resourceapi.DeviceClaim{Requests: []resourceapi.DeviceRequest{{
				Name:    "vf",
				Exactly: &resourceapi.ExactDeviceRequest{DeviceClassName: "braid-net", AllocationMode: resourceapi.DeviceAllocationModeExactCount, Count: 3},
			}}}},
		}
		claim, err := resource.ResourceClaims(d.namespace).Create(ctx, claim, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("create ResourceClaim: %v", err)
		}
		t.Cleanup(func() {
			_ = resource.ResourceClaims(d.namespace).Delete(context.Background(), claim.Name, metav1.DeleteOptions{})
		})
		d.deviceNAD("dra-vf", "example.com/vf", map[string]any{"cniVersion": "1.0.0", "name": "dra-vf", "type": "sriov", "ip": "10.58.0.10/24"})

		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "dra", Namespace: d.namespace, Annotations: map[string]string{nadv1.NetworkAttachmentAnnot: "dra-vf, dra-vf@fast1"}},
			Spec: corev1.PodSpec{
				NodeName:       "node1",
				ResourceClaims: []corev1.PodResourceClaim{{Name: "net", ResourceClaimName: ptr("net")}},
				Containers:     []corev1.Container{{Name: "c", Image: "pause", Resources: corev1.ResourceRequirements{Claims: []corev1.ResourceClaim{{Name: "net"}}}}},
			},
		}
		if pod, err = d.kube.CoreV1().Pods(d.namespace).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create pod: %v", err)
		}
		claim.Status.Allocation = &resourceapi.AllocationResult{Devices: resourceapi.DeviceAllocationResult{Results: []resourceapi.DeviceRequestAllocationResult{
			{Request: "vf", Driver: driver, Pool: "node1", Device: "gpu0"},
			{Request: "vf", Driver: driver, Pool: "node1", Device: "vf1"},
			{Request: "vf", Driver: driver, Pool: "node1", Device: "vf0"},
		}}, NodeSelector: onNode(testNode)}
		claim.Status.ReservedFor = []resourceapi.ResourceClaimConsumerReference{{Resource: "pods", Name: pod.Name, UID: pod.UID}}
		if _, err := resource.ResourceClaims(d.namespace).UpdateStatus(ctx, claim, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("allocate ResourceClaim: %v", err)
		}

		sb := d.sandbox(pod)
		res := sb.mustAdd()
		adds := d.recorded("ADD")
		for ifName, id := range map[string]string{"net1": "0000:01:00.1", "fast1": "0000:01:00.2"} {
			if got := adds[ifName].Config["deviceID"]; got != id {
				t.Errorf("%s: deviceID %v, want %s from the claim's device", ifName, got, id)
			}
		}

		macs := map[string]string{}
		for _, iface := range res.Interfaces {
			macs[iface.Name] = iface.Mac
		}
		want := map[string]*resourceapi.NetworkDeviceData{
			"vf0": {InterfaceName: "net1", IPs: []string{"10.58.0.10/24"}, HardwareAddress: macs["net1"]},
			"vf1": {InterfaceName: "fast1", IPs: []string{"10.58.0.10/24"}, HardwareAddress: macs["fast1"]},
		}
		var got map[string]*resourceapi.NetworkDeviceData
		eventually(t, 10*time.Second, "networkData in the claim", func() error {
			stored, err := resource.ResourceClaims(d.namespace).Get(ctx, claim.Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			got = map[string]*resourceapi.NetworkDeviceData{}
			if out, err := yaml.Marshal(stored.Status.Devices); err == nil {
				t.Logf("claim %s/%s status.devices:\n%s", d.namespace, claim.Name, out)
			}
			for _, dev := range stored.Status.Devices {
				got[dev.Device] = dev.NetworkData
			}
			if !reflect.DeepEqual(got, want) {
				return fmt.Errorf("status.devices networkData %s, want %s", show(got), show(want))
			}
			// KEP-4817's Ready condition, per device braid configured.
			for _, dev := range stored.Status.Devices {
				c := apimeta.FindStatusCondition(dev.Conditions, devices.ConditionReady)
				if c == nil || c.Status != metav1.ConditionTrue || c.Reason != devices.ReasonConfigured || !strings.Contains(c.Message, want[dev.Device].InterfaceName) {
					return fmt.Errorf("device %s: conditions %+v, want Ready True naming %s", dev.Device, dev.Conditions, want[dev.Device].InterfaceName)
				}
			}
			return nil
		})
		sb.mustDel()
		if dels := d.recorded("DEL"); dels["fast1"].Config["deviceID"] != "0000:01:00.2" {
			t.Errorf("DEL fast1: deviceID %v, want the device ADD got", dels["fast1"].Config["deviceID"])
		}
	})
}

func netDevice(name, resourceName, id string) resourceapi.Device {
	return resourceapi.Device{Name: name, Attributes: map[resourceapi.QualifiedName]resourceapi.DeviceAttribute{
		devices.ResourceNameAttribute: {StringValue: ptr(resourceName)},
		devices.DeviceIDAttribute:     {StringValue: ptr(id)},
	}}
}

func show(m map[string]*resourceapi.NetworkDeviceData) string {
	out := "{"
	for k, v := range m {
		if v == nil {
			out += " " + k + ":<nil>"
			continue
		}
		out += fmt.Sprintf(" %s:%+v", k, *v)
	}
	return out + " }"
}

func ptr[T any](v T) *T { return &v }
