package plan_test

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	corev1 "k8s.io/api/core/v1"

	"github.com/braid-cni/braid/devices"
	"github.com/braid-cni/braid/internal/testutil"
	"github.com/braid-cni/braid/nad"
	"github.com/braid-cni/braid/netconf"
	"github.com/braid-cni/braid/plan"
)

// fakeDevices is a devices.Lister returning a fixed allocation.
type fakeDevices struct {
	devs  []devices.Device
	err   error
	calls int
}

func (f *fakeDevices) Devices(context.Context, *corev1.Pod) ([]devices.Device, error) {
	f.calls++
	return f.devs, f.err
}

const (
	confSRIOV = `{"cniVersion":"1.0.0","name":"sriov-a","type":"sriov","vlan":10,"ipam":{"type":"host-local","subnet":"10.1.0.0/24"}}`
	// confHostDev declares the deviceID capability and names no device.
	confHostDev = `{"cniVersion":"1.0.0","name":"hd","plugins":[{"type":"host-device","capabilities":{"deviceID":true}},{"type":"tuning"}]}`
)

func deviceNADs() mapNADs {
	m := fixtureNADs()
	for _, n := range []struct{ name, config, resource string }{
		{"sriov-a", confSRIOV, "intel.com/sriov"},
		{"sriov-b", confSRIOV, "intel.com/sriov"},
		{"hd", confHostDev, "example.com/pci"},
	} {
		obj := newNAD("ns", n.name, n.config)
		obj.Annotations = map[string]string{devices.ResourceNameKey: n.resource}
		m["ns/"+n.name] = obj
	}
	return m
}

func deviceBuilder(t *testing.T, lister devices.Lister, annot string) (*plan.Builder, plan.Request) {
	t.Helper()
	nc := clusterFileConf(t)
	pods := &mapPods{pods: map[string]*corev1.Pod{"ns/p": newPod("ns", "p", "uid-1", map[string]string{"k8s.v1.cni.cncf.io/networks": annot})}}
	b := &plan.Builder{
		Conf: nc, Pods: pods, Resolver: &nad.Resolver{NADs: deviceNADs(), ConfDir: nc.ConfDir},
		Devices: lister, DeviceInfo: "/devinfo", Log: slog.New(slog.DiscardHandler),
	}
	return b, plan.Request{ContainerID: "c1", IfName: "eth0", Pod: plan.PodRef{Namespace: "ns", Name: "p", UID: "uid-1"}}
}

var podDevices = []devices.Device{
	{Resource: "intel.com/sriov", ID: "0000:3b:02.2"},
	{Resource: "intel.com/sriov", ID: "0000:3b:02.1"},
	{Resource: "example.com/pci", ID: "0000:5e:00.1"},
}

func TestBuildDeviceBacked(t *testing.T) {
	lister := &fakeDevices{devs: podDevices}
	b, req := deviceBuilder(t, lister, "sriov-a, a, sriov-b@vf1, hd")
	p, err := b.Build(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if lister.calls != 1 {
		t.Errorf("devices listed %d times, want once", lister.calls)
	}
	byIf := map[string]plan.Attachment{}
	for _, a := range p.Attachments {
		byIf[a.IfName] = a
	}
	for _, tc := range []struct {
		ifName, network, resource, id, config string
	}{
		{"net1", "ns/sriov-a", "intel.com/sriov", "0000:3b:02.1",
			`{"cniVersion":"1.0.0","deviceID":"0000:3b:02.1","ipam":{"subnet":"10.1.0.0/24","type":"host-local"},"name":"sriov-a","type":"sriov","vlan":10}`},
		{"vf1", "ns/sriov-b", "intel.com/sriov", "0000:3b:02.2",
			`{"cniVersion":"1.0.0","deviceID":"0000:3b:02.2","ipam":{"subnet":"10.1.0.0/24","type":"host-local"},"name":"sriov-a","type":"sriov","vlan":10}`},
		// host-device without a device of its own also gets pciBusID;
		// only the first plugin of the chain gets the device.
		{"net4", "ns/hd", "example.com/pci", "0000:5e:00.1",
			`{"cniVersion":"1.0.0","name":"hd","plugins":[{"capabilities":{"deviceID":true},"deviceID":"0000:5e:00.1","pciBusID":"0000:5e:00.1","type":"host-device"},{"type":"tuning"}]}`},
	} {
		a, ok := byIf[tc.ifName]
		if !ok {
			t.Fatalf("no attachment %s in %+v", tc.ifName, p.Attachments)
		}
		if a.Network != tc.network || a.Device == nil || a.Device.Resource != tc.resource || a.Device.ID != tc.id {
			t.Errorf("%s: network %s device %+v, want %s %s=%s", tc.ifName, a.Network, a.Device, tc.network, tc.resource, tc.id)
			continue
		}
		if got := testutil.Compact(t, a.Config); got != tc.config {
			t.Errorf("%s config:\n got %s\nwant %s", tc.ifName, got, tc.config)
		}
		wantInfo := "/devinfo/cni/" + dashed(tc.network) + "-c1-" + tc.ifName + "-device.json"
		if a.Device.InfoFile != wantInfo || a.Device.PluginInfoFile != "/devinfo/dp/"+dashed(tc.resource)+"-"+tc.id+"-device.json" {
			t.Errorf("%s device-info files %q, %q", tc.ifName, a.Device.InfoFile, a.Device.PluginInfoFile)
		}
		if a.CapabilityArgs["deviceID"] != tc.id || a.CapabilityArgs["CNIDeviceInfoFile"] != wantInfo {
			t.Errorf("%s capability args %v", tc.ifName, a.CapabilityArgs)
		}
	}
	if a := byIf["net2"]; a.Device != nil || a.CapabilityArgs["deviceID"] != nil {
		t.Errorf("net2 is not device-backed but got %+v %v", a.Device, a.CapabilityArgs)
	}
	if p.Attachments[0].Device != nil {
		t.Errorf("cluster network got a device: %+v", p.Attachments[0].Device)
	}
}

// A selection's deviceID picks that device; the others keep their order.
func TestBuildDeviceRequested(t *testing.T) {
	b, req := deviceBuilder(t, &fakeDevices{devs: podDevices}, `[{"name":"sriov-a"},{"name":"sriov-b","deviceID":"0000:3b:02.1"}]`)
	p, err := b.Build(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Attachments[1].Device.ID + " " + p.Attachments[2].Device.ID; got != "0000:3b:02.2 0000:3b:02.1" {
		t.Errorf("devices %s, want the requested one on net2 and the other on net1", got)
	}
}

func TestBuildDeviceErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		lister *fakeDevices
		annot  string
		code   uint
		parts  []string
	}{
		{"more networks than devices", &fakeDevices{devs: podDevices}, "sriov-a, sriov-b, sriov-a@x3", types.ErrInvalidNetworkConfig,
			[]string{"ns/p", "ns/sriov-a", "x3", "intel.com/sriov", "0000:3b:02.1 0000:3b:02.2"}},
		{"the pod requested no such resource", &fakeDevices{}, "hd", types.ErrInvalidNetworkConfig,
			[]string{"network ns/hd (interface net1)", "no device of resource example.com/pci", "allocation: none"}},
		{"the kubelet cannot be asked", &fakeDevices{err: errors.New("dial unix /kubelet.sock: connection refused")}, "hd", types.ErrTryAgainLater,
			[]string{"ns/p", "list allocated devices"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, req := deviceBuilder(t, tc.lister, tc.annot)
			_, err := b.Build(context.Background(), req)
			testutil.WantCNIError(t, err, tc.code, tc.parts...)
		})
	}
}

// Without device-backed networks the kubelet is never asked.
func TestBuildNoDevicesNoListing(t *testing.T) {
	lister := &fakeDevices{err: errors.New("must not be called")}
	b, req := deviceBuilder(t, lister, "a")
	if _, err := b.Build(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if lister.calls != 0 {
		t.Errorf("devices listed %d times for a pod without device-backed networks", lister.calls)
	}
}

// braidctl explain away from the node: the resource is shown, no ID.
func TestBuildDevicesUnknown(t *testing.T) {
	b, req := deviceBuilder(t, nil, "sriov-a")
	p, err := b.Build(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	d := p.Attachments[1].Device
	if d == nil || d.Resource != "intel.com/sriov" || d.ID != "" || p.Attachments[1].CapabilityArgs["deviceID"] != nil {
		t.Errorf("device %+v args %v; want the resource only", d, p.Attachments[1].CapabilityArgs)
	}
}

func dashed(s string) string {
	out := []byte(s)
	for i, c := range out {
		if c == '/' {
			out[i] = '-'
		}
	}
	return string(out)
}

// A cluster network that is a device-backed NAD (an SR-IOV primary
// network) gets a device too, before the secondary networks.
func TestBuildDeviceBackedClusterNetwork(t *testing.T) {
	nads := deviceNADs()
	primary := newNAD("kube-system", "sriov-primary", `{"cniVersion":"1.0.0","name":"sriov-primary","type":"sriov"}`)
	primary.Annotations = map[string]string{devices.ResourceNameKey: "intel.com/sriov"}
	nads["kube-system/sriov-primary"] = primary
	nc, err := netconf.Parse([]byte(`{"cniVersion":"1.0.0","name":"braid","type":"braid","clusterNetwork":"sriov-primary"}`))
	if err != nil {
		t.Fatal(err)
	}
	pods := &mapPods{pods: map[string]*corev1.Pod{"ns/p": newPod("ns", "p", "uid-1", map[string]string{"k8s.v1.cni.cncf.io/networks": "sriov-a"})}}
	b := &plan.Builder{Conf: nc, Pods: pods, Resolver: &nad.Resolver{NADs: nads, ConfDir: nc.ConfDir},
		Devices: &fakeDevices{devs: podDevices}, DeviceInfo: "/devinfo", Log: slog.New(slog.DiscardHandler)}
	p, err := b.Build(context.Background(), plan.Request{ContainerID: "c1", IfName: "eth0", Pod: plan.PodRef{Namespace: "ns", Name: "p", UID: "uid-1"}})
	if err != nil {
		t.Fatal(err)
	}
	if d := p.Attachments[0].Device; d == nil || d.ID != "0000:3b:02.1" || p.Attachments[0].CapabilityArgs["deviceID"] != "0000:3b:02.1" {
		t.Errorf("cluster network device %+v args %v, want the first VF", d, p.Attachments[0].CapabilityArgs)
	}
	if d := p.Attachments[1].Device; d == nil || d.ID != "0000:3b:02.2" {
		t.Errorf("net1 device %+v, want the second VF", d)
	}
}

// TestReplanDevices: a device-backed network added to a running pod takes
// a device of the pod's allocation that no kept attachment uses; a removed
// attachment's device is free again; none free is code 7 naming the
// resource and the allocation.
func TestReplanDevices(t *testing.T) {
	for _, tc := range []struct {
		name, after string
		want        map[string]string // ifname -> device ID of every device-backed attachment of Next
		added       []string
		code        uint
		parts       []string
	}{
		{name: "the free device", after: "sriov-a, sriov-b",
			want: map[string]string{"net1": "0000:3b:02.1", "net2": "0000:3b:02.2"}, added: []string{"net2"}},
		{name: "the removed one's device", after: "sriov-b",
			want: map[string]string{"net1": "0000:3b:02.1"}, added: []string{"net1"}},
		{name: "the one the selection names", after: `[{"name":"sriov-a"},{"name":"sriov-b","deviceID":"0000:3b:02.2"}]`,
			want: map[string]string{"net1": "0000:3b:02.1", "net2": "0000:3b:02.2"}, added: []string{"net2"}},
		{name: "none free", after: "sriov-a, sriov-b, sriov-a@x3", code: types.ErrInvalidNetworkConfig,
			parts: []string{"ns/sriov-a", "x3", "intel.com/sriov", "intel.com/sriov=[0000:3b:02.1 0000:3b:02.2]"}},
		{name: "naming the one in use", after: `[{"name":"sriov-a"},{"name":"sriov-b","deviceID":"0000:3b:02.1"}]`, code: types.ErrInvalidNetworkConfig,
			parts: []string{"device 0000:3b:02.1 of resource intel.com/sriov", "already used"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, req := deviceBuilder(t, &fakeDevices{devs: podDevices}, "sriov-a")
			prev, err := b.Build(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			for i := range prev.Attachments {
				prev.Attachments[i].Result = []byte(`{"cniVersion":"1.0.0"}`)
			}
			b.Pods.(*mapPods).pods["ns/p"].Annotations["k8s.v1.cni.cncf.io/networks"] = tc.after
			c, err := b.Replan(context.Background(), prev)
			if tc.code != 0 {
				testutil.WantCNIError(t, err, tc.code, tc.parts...)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, a := range c.Next.Attachments {
				if a.Device != nil {
					got[a.IfName] = a.Device.ID
				}
			}
			if !maps.Equal(got, tc.want) {
				t.Errorf("devices %v, want %v", got, tc.want)
			}
			var added []string
			for _, i := range c.Added {
				a := c.Next.Attachments[i]
				added = append(added, a.IfName)
				if a.CapabilityArgs["deviceID"] != a.Device.ID || !strings.Contains(string(a.Config), `"deviceID":"`+a.Device.ID+`"`) {
					t.Errorf("%s: deviceID %s not in its capability args %v or config %s", a.IfName, a.Device.ID, a.CapabilityArgs, a.Config)
				}
			}
			if !slices.Equal(added, tc.added) {
				t.Errorf("added %v, want %v", added, tc.added)
			}
		})
	}
}
