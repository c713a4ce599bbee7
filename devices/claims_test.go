package devices

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	resourceapi "k8s.io/api/resource/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

const testDriver = "braid.test"

func ptr[T any](v T) *T { return &v }

func netDevice(name, resource, id string) resourceapi.Device {
	attrs := map[resourceapi.QualifiedName]resourceapi.DeviceAttribute{}
	if resource != "" {
		attrs[ResourceNameAttribute] = resourceapi.DeviceAttribute{StringValue: ptr(resource)}
	}
	if id != "" {
		attrs[DeviceIDAttribute] = resourceapi.DeviceAttribute{StringValue: ptr(id)}
	}
	return resourceapi.Device{Name: name, Attributes: attrs}
}

func slice(name, driver, pool string, generation int64, devs ...resourceapi.Device) *resourceapi.ResourceSlice {
	return &resourceapi.ResourceSlice{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: resourceapi.ResourceSliceSpec{
			Driver:   driver,
			Pool:     resourceapi.ResourcePool{Name: pool, Generation: generation, ResourceSliceCount: 1},
			AllNodes: ptr(true),
			Devices:  devs,
		},
	}
}

type result struct{ driver, pool, device string }

func allocatedClaim(name string, results ...result) *resourceapi.ResourceClaim {
	c := &resourceapi.ResourceClaim{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name}}
	c.Status.Allocation = &resourceapi.AllocationResult{}
	for _, r := range results {
		c.Status.Allocation.Devices.Results = append(c.Status.Allocation.Devices.Results,
			resourceapi.DeviceRequestAllocationResult{Request: "req", Driver: r.driver, Pool: r.pool, Device: r.device})
	}
	return c
}

// claimPod uses the claim "shared" by name and one generated from a
// template as "p-net-x".
func claimPod() *corev1.Pod {
	p := pod("ns", "p", "uid-p")
	p.Spec.ResourceClaims = []corev1.PodResourceClaim{
		{Name: "net", ResourceClaimTemplateName: ptr("net-template")},
		{Name: "other", ResourceClaimName: ptr("shared")},
	}
	p.Status.ResourceClaimStatuses = []corev1.PodResourceClaimStatus{{Name: "net", ResourceClaimName: ptr("p-net-x")}}
	return p
}

// clusterObjects: driver braid.test has pools pool-a (two network devices
// and a plain one) and pool-b (generation 2 replaces generation 1); driver
// gpu.test has a device without network attributes.
func clusterObjects() []runtime.Object {
	return []runtime.Object{
		slice("a", testDriver, "pool-a", 1,
			netDevice("vf0", "example.com/vf", "0000:01:00.1"),
			netDevice("vf1", "example.com/vf", "0000:01:00.2"),
			netDevice("plain0", "", "")),
		slice("b-old", testDriver, "pool-b", 1, netDevice("vf2", "example.com/vf", "stale")),
		slice("b-new", testDriver, "pool-b", 2, netDevice("vf2", "example.com/vf", "0000:02:00.1")),
		slice("gpu", "gpu.test", "pool-a", 1, netDevice("gpu0", "", "")),
		allocatedClaim("p-net-x", result{testDriver, "pool-a", "vf0"}, result{testDriver, "pool-b", "vf2"}),
		allocatedClaim("shared", result{"gpu.test", "pool-a", "gpu0"}, result{testDriver, "pool-a", "vf1"}),
	}
}

func countActions(actions []k8stesting.Action, verb, resource string) int {
	n := 0
	for _, a := range actions {
		if a.GetVerb() == verb && a.GetResource().Resource == resource {
			n++
		}
	}
	return n
}

func TestClaimsDevices(t *testing.T) {
	client := fake.NewClientset(clusterObjects()...)
	got, err := (&Claims{Client: client}).Devices(t.Context(), claimPod())
	if err != nil {
		t.Fatal(err)
	}
	want := []Device{
		{Resource: "example.com/vf", ID: "0000:01:00.1", Claim: &ClaimDevice{Namespace: "ns", Name: "p-net-x", Driver: testDriver, Pool: "pool-a", Device: "vf0"}},
		{Resource: "example.com/vf", ID: "0000:02:00.1", Claim: &ClaimDevice{Namespace: "ns", Name: "p-net-x", Driver: testDriver, Pool: "pool-b", Device: "vf2"}},
		{Resource: "example.com/vf", ID: "0000:01:00.2", Claim: &ClaimDevice{Namespace: "ns", Name: "shared", Driver: testDriver, Pool: "pool-a", Device: "vf1"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Devices =\n%s\nwant\n%s", dump(got), dump(want))
	}
	actions := client.Actions()
	if n := countActions(actions, "get", "resourceclaims"); n != 2 {
		t.Errorf("%d gets of ResourceClaims, want 2", n)
	}
	var selectors []string
	for _, a := range actions {
		if l, ok := a.(k8stesting.ListAction); ok && a.GetResource().Resource == "resourceslices" {
			selectors = append(selectors, l.GetListRestrictions().Fields.String())
		}
	}
	// One list per driver, however many pools and claims use it.
	if want := []string{"spec.driver=" + testDriver, "spec.driver=gpu.test"}; !reflect.DeepEqual(selectors, want) {
		t.Errorf("ResourceSlice lists with field selectors %q, want %q", selectors, want)
	}
}

func dump(devs []Device) string {
	var b strings.Builder
	for _, d := range devs {
		b.WriteString("  " + d.Resource + "=" + d.ID)
		if d.Claim != nil {
			b.WriteString(" " + d.Claim.Namespace + "/" + d.Claim.Name + " " + d.Claim.Driver + "/" + d.Claim.Pool + "/" + d.Claim.Device)
		}
		b.WriteString("\n")
	}
	return b.String()
}

func TestClaimsDevicesErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		// objs replace clusterObjects' with the same name.
		objs []runtime.Object
		want string
	}{
		{
			name: "a claim that is not allocated",
			objs: []runtime.Object{&resourceapi.ResourceClaim{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "shared"}}},
			want: "pod ns/p: ResourceClaim ns/shared is not allocated yet",
		},
		{
			name: "a network device without a device ID",
			objs: []runtime.Object{slice("a", testDriver, "pool-a", 1,
				netDevice("vf0", "example.com/vf", "0000:01:00.1"),
				netDevice("vf1", "example.com/vf", ""))},
			want: "ResourceClaim ns/shared: device braid.test/pool-a/vf1 has attribute k8s.cni.cncf.io/resourceName=example.com/vf but no string attribute k8s.cni.cncf.io/deviceID",
		},
		{
			name: "an allocated device in no slice",
			objs: []runtime.Object{slice("gpu", "gpu.test", "pool-a", 1)},
			want: "ResourceClaim ns/shared: device gpu.test/pool-a/gpu0 is in no ResourceSlice of driver gpu.test",
		},
		{
			name: "a claim that is gone",
			objs: []runtime.Object{nil},
			want: `get ResourceClaim ns/shared of pod ns/p: resourceclaims.resource.k8s.io "shared" not found`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objs := replaceObjects(clusterObjects(), tc.objs)
			_, err := (&Claims{Client: fake.NewClientset(objs...)}).Devices(t.Context(), claimPod())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// replaceObjects puts each of repl in place of the object of base with the
// same name; a nil in repl removes the claim "shared".
func replaceObjects(base, repl []runtime.Object) []runtime.Object {
	name := func(o runtime.Object) string {
		if o == nil {
			return "shared"
		}
		return o.(metav1.Object).GetName()
	}
	out := base[:0]
	for _, o := range base {
		if !containsName(repl, name(o), name) {
			out = append(out, o)
		}
	}
	for _, o := range repl {
		if o != nil {
			out = append(out, o)
		}
	}
	return out
}

func containsName(objs []runtime.Object, n string, name func(runtime.Object) string) bool {
	for _, o := range objs {
		if name(o) == n {
			return true
		}
	}
	return false
}

func TestClaimsDevicesNoAPICall(t *testing.T) {
	notNeeded := pod("ns", "p", "u")
	notNeeded.Spec.ResourceClaims = []corev1.PodResourceClaim{{Name: "net", ResourceClaimTemplateName: ptr("t")}}
	notNeeded.Status.ResourceClaimStatuses = []corev1.PodResourceClaimStatus{{Name: "net"}}
	notGenerated := pod("ns", "p", "u")
	notGenerated.Spec.ResourceClaims = []corev1.PodResourceClaim{{Name: "net", ResourceClaimTemplateName: ptr("t")}}
	for _, tc := range []struct {
		name    string
		pod     *corev1.Pod
		wantErr string
	}{
		{name: "a pod without claims", pod: pod("ns", "p", "u")},
		{name: "a template claim that was not needed", pod: notNeeded},
		{name: "a template claim not generated yet", pod: notGenerated,
			wantErr: `pod ns/p: the ResourceClaim for spec.resourceClaims "net" has not been generated yet`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client := fake.NewClientset(clusterObjects()...)
			got, err := (&Claims{Client: client}).Devices(t.Context(), tc.pod)
			switch {
			case tc.wantErr == "" && (err != nil || len(got) != 0):
				t.Errorf("Devices = %v, %v; want none", got, err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("error %v, want one containing %q", err, tc.wantErr)
			}
			if a := client.Actions(); len(a) != 0 {
				t.Errorf("%d API calls, want none: %v", len(a), a)
			}
		})
	}
}

// TestClaimsFeedAllocation: devices from claims are handed out like the
// kubelet's, sorted by ID within a resource, each keeping its claim.
func TestClaimsFeedAllocation(t *testing.T) {
	devs, err := (&Claims{Client: fake.NewClientset(clusterObjects()...)}).Devices(t.Context(), claimPod())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		wants []string // deviceID named by the network selection, or ""
		got   []string // claim/device taken
		err   string
	}{
		{"in turn", []string{"", "", ""}, []string{"p-net-x/vf0", "shared/vf1", "p-net-x/vf2"}, ""},
		{"one named first", []string{"0000:02:00.1", ""}, []string{"p-net-x/vf2", "p-net-x/vf0"}, ""},
		{"one more than claimed", []string{"", "", "", ""}, []string{"p-net-x/vf0", "shared/vf1", "p-net-x/vf2"},
			"every device of resource example.com/vf allocated to the pod is used"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := NewAllocation(devs)
			var got []string
			var err error
			for _, w := range tc.wants {
				var d Device
				if d, err = a.Take("example.com/vf", w); err != nil {
					break
				}
				got = append(got, d.Claim.Name+"/"+d.Claim.Device)
			}
			if !reflect.DeepEqual(got, tc.got) {
				t.Errorf("took %v, want %v", got, tc.got)
			}
			if (tc.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.err)) {
				t.Errorf("error %v, want %q", err, tc.err)
			}
		})
	}
}

var vf1 = ClaimDevice{Namespace: "ns", Name: "shared", Driver: testDriver, Pool: "pool-a", Device: "vf1"}

func readyCondition() metav1.Condition {
	return metav1.Condition{Type: "Ready", Status: metav1.ConditionTrue, Reason: "Configured", LastTransitionTime: metav1.Unix(1700000000, 0)}
}

// sharedWithStatus is the claim "shared" whose status.devices already holds
// an entry for gpu0 and, with vf1Entry, one for vf1 (conditions and data,
// no network data).
func sharedWithStatus(vf1Entry bool) *resourceapi.ResourceClaim {
	c := allocatedClaim("shared", result{"gpu.test", "pool-a", "gpu0"}, result{testDriver, "pool-a", "vf1"})
	c.Status.Devices = []resourceapi.AllocatedDeviceStatus{{Driver: "gpu.test", Pool: "pool-a", Device: "gpu0", Conditions: []metav1.Condition{readyCondition()}}}
	if vf1Entry {
		c.Status.Devices = append(c.Status.Devices, resourceapi.AllocatedDeviceStatus{
			Driver: testDriver, Pool: "pool-a", Device: "vf1",
			Conditions: []metav1.Condition{readyCondition()},
			Data:       &runtime.RawExtension{Raw: []byte(`{"vf":1}`)},
		})
	}
	return c
}

var testNetworkData = NetworkData{InterfaceName: "net1", IPs: []string{"10.1.0.5/24", "2001:db8::5/64"}, HardwareAddress: "02:00:00:00:00:01"}

func wantNetworkData() *resourceapi.NetworkDeviceData {
	return &resourceapi.NetworkDeviceData{InterfaceName: "net1", IPs: []string{"10.1.0.5/24", "2001:db8::5/64"}, HardwareAddress: "02:00:00:00:00:01"}
}

var testStatus = DeviceStatus{Network: &testNetworkData, Ready: true, Reason: ReasonConfigured, Message: "interface net1 of pod ns/p"}

// TestRecordDeviceStatus: the device's entry gets the network data and a
// Ready condition; the entry's driver data and the other entries stay, and
// a condition whose status did not change keeps its transition time.
func TestRecordDeviceStatus(t *testing.T) {
	gpuEntry := resourceapi.AllocatedDeviceStatus{Driver: "gpu.test", Pool: "pool-a", Device: "gpu0", Conditions: []metav1.Condition{readyCondition()}}
	for _, tc := range []struct {
		name      string
		vf1Entry  bool
		st        DeviceStatus
		wantData  *resourceapi.NetworkDeviceData
		wantReady metav1.ConditionStatus
		keptTime  bool // the Ready condition's transition time is the fixture's
	}{
		{name: "adds an entry", st: testStatus, wantData: wantNetworkData(), wantReady: metav1.ConditionTrue},
		{name: "updates an entry keeping its data", vf1Entry: true, st: testStatus, wantData: wantNetworkData(), wantReady: metav1.ConditionTrue, keptTime: true},
		{name: "a failed attachment: not ready, no network data", vf1Entry: true,
			st: DeviceStatus{Reason: ReasonAttachFailed, Message: "interface net1 of pod ns/p: no such device"}, wantReady: metav1.ConditionFalse},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client := fake.NewClientset(sharedWithStatus(tc.vf1Entry))
			if err := (&Claims{Client: client}).RecordDeviceStatus(t.Context(), vf1, tc.st); err != nil {
				t.Fatal(err)
			}
			c, err := client.ResourceV1().ResourceClaims("ns").Get(t.Context(), "shared", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(c.Status.Devices) != 2 || !reflect.DeepEqual(c.Status.Devices[0], gpuEntry) {
				t.Fatalf("status.devices = %+v, want gpu0's entry unchanged and vf1's", c.Status.Devices)
			}
			got := c.Status.Devices[1]
			if got.Driver != testDriver || got.Pool != "pool-a" || got.Device != "vf1" || !reflect.DeepEqual(got.NetworkData, tc.wantData) {
				t.Errorf("vf1's entry %+v, want network data %+v", got, tc.wantData)
			}
			if tc.vf1Entry && (got.Data == nil || string(got.Data.Raw) != `{"vf":1}`) {
				t.Errorf("vf1's driver data %v, want it kept", got.Data)
			}
			ready := meta.FindStatusCondition(got.Conditions, ConditionReady)
			if len(got.Conditions) != 1 || ready == nil || ready.Status != tc.wantReady || ready.Reason != tc.st.Reason || ready.Message != tc.st.Message || ready.LastTransitionTime.IsZero() {
				t.Fatalf("vf1's conditions %+v, want one Ready=%s with reason %s and message %q", got.Conditions, tc.wantReady, tc.st.Reason, tc.st.Message)
			}
			if kept := ready.LastTransitionTime.Equal(&metav1.Time{Time: readyCondition().LastTransitionTime.Time}); kept != tc.keptTime {
				t.Errorf("Ready's transition time %v kept: %v, want %v", ready.LastTransitionTime, kept, tc.keptTime)
			}
		})
	}
}

func TestRecordDeviceStatusRetriesOnConflict(t *testing.T) {
	client := fake.NewClientset(sharedWithStatus(false))
	conflicts := 0
	client.PrependReactor("update", "resourceclaims", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "status" || conflicts > 0 {
			return false, nil, nil
		}
		conflicts++
		// Someone else wrote the claim since our Get.
		return true, nil, apierrors.NewConflict(schema.GroupResource{Group: "resource.k8s.io", Resource: "resourceclaims"}, "shared", errors.New("the object has been modified"))
	})
	if err := (&Claims{Client: client}).RecordDeviceStatus(t.Context(), vf1, testStatus); err != nil {
		t.Fatal(err)
	}
	if g, u := countActions(client.Actions(), "get", "resourceclaims"), countActions(client.Actions(), "update", "resourceclaims"); conflicts != 1 || g != 2 || u != 2 {
		t.Errorf("%d conflicts, %d gets, %d updates; want 1 conflict and the claim read again and written again", conflicts, g, u)
	}
	c, err := client.ResourceV1().ResourceClaims("ns").Get(t.Context(), "shared", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Status.Devices) != 2 || !reflect.DeepEqual(c.Status.Devices[1].NetworkData, wantNetworkData()) {
		t.Errorf("status.devices = %+v, want vf1's network data after the retry", c.Status.Devices)
	}
}

func TestRecordDeviceStatusDropped(t *testing.T) {
	client := fake.NewClientset(sharedWithStatus(false))
	// What an API server with DRAResourceClaimDeviceStatus off answers.
	client.PrependReactor("update", "resourceclaims", func(a k8stesting.Action) (bool, runtime.Object, error) {
		c := a.(k8stesting.UpdateAction).GetObject().(*resourceapi.ResourceClaim).DeepCopy()
		c.Status.Devices = nil
		return true, c, nil
	})
	err := (&Claims{Client: client}).RecordDeviceStatus(t.Context(), vf1, testStatus)
	if !errors.Is(err, ErrNetworkDataUnsupported) || !strings.Contains(err.Error(), "ResourceClaim ns/shared") {
		t.Errorf("error %v, want ErrNetworkDataUnsupported naming the claim", err)
	}
}

func TestRecordDeviceStatusNotAllocated(t *testing.T) {
	client := fake.NewClientset(sharedWithStatus(false))
	dev := vf1
	dev.Device = "vf9"
	err := (&Claims{Client: client}).RecordDeviceStatus(t.Context(), dev, testStatus)
	if err == nil || !strings.Contains(err.Error(), "device braid.test/pool-a/vf9 is not allocated in the claim") {
		t.Errorf("error %v, want one saying vf9 is not allocated", err)
	}
	if n := countActions(client.Actions(), "update", "resourceclaims"); n != 0 {
		t.Errorf("%d updates, want none", n)
	}
}
