package attacher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"

	"github.com/braid-cni/braid/devices"
	"github.com/braid-cni/braid/plan"
)

var pluginInfo = &nadv1.DeviceInfo{Type: nadv1.DeviceInfoTypePCI, Version: nadv1.DeviceInfoVersion, Pci: &nadv1.PciDevice{PciAddress: "0000:3b:02.1"}}

// devicePlan is testPlan with net1 device-backed and the device plugin's
// device-info file in place.
func devicePlan(t *testing.T, id string) (*plan.Plan, string) {
	t.Helper()
	dir := devices.InfoDir(t.TempDir())
	pluginFile := dir.PluginFile("example.com/vf", "0000:3b:02.1")
	if err := os.MkdirAll(filepath.Dir(pluginFile), 0o755); err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(pluginInfo)
	if err := os.WriteFile(pluginFile, data, 0o644); err != nil {
		t.Fatal(err)
	}
	p := testPlan(id, "1.0.0")
	infoFile := dir.CNIFile("ns1/blue", id, "net1")
	p.Attachments[1].Device = &plan.Device{
		Device:         devices.Device{Resource: "example.com/vf", ID: "0000:3b:02.1"},
		PluginInfoFile: pluginFile,
		InfoFile:       infoFile,
	}
	return p, infoFile
}

func statusOf(t *testing.T, r *fakeRecorder, ifName string) nadv1.NetworkStatus {
	t.Helper()
	if len(r.records) != 1 {
		t.Fatalf("%d network-status records, want 1", len(r.records))
	}
	for _, s := range r.records[0].statuses {
		if s.Interface == ifName {
			return s
		}
	}
	t.Fatalf("no network-status entry for %s in %+v", ifName, r.records[0].statuses)
	return nadv1.NetworkStatus{}
}

// The delegate finds the device plugin's device-info at CNIDeviceInfoFile,
// network-status reports it, and DEL removes the copy.
func TestAddDeviceInfo(t *testing.T) {
	f := newFixture(t)
	p, infoFile := devicePlan(t, "c1")
	var seenByDelegate *nadv1.DeviceInfo
	f.invoker.onAdd = map[string]func(){blueName: func() { seenByDelegate, _ = devices.Load(infoFile) }}
	if _, err := f.attacher.addPlan(context.Background(), p, "1.0.0"); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(seenByDelegate, pluginInfo) {
		t.Errorf("the delegate found %+v at CNIDeviceInfoFile, want the device plugin's %+v", seenByDelegate, pluginInfo)
	}
	if got := statusOf(t, f.recorder, "net1").DeviceInfo; !reflect.DeepEqual(got, pluginInfo) {
		t.Errorf("network-status device-info of net1 = %+v, want %+v", got, pluginInfo)
	}
	if got := statusOf(t, f.recorder, "net2").DeviceInfo; got != nil {
		t.Errorf("net2 is not device-backed, network-status has device-info %+v", got)
	}
	if err := f.attacher.delPlan(context.Background(), f.journaled(t, "c1"), p.NetNS); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(infoFile); !os.IsNotExist(err) {
		t.Errorf("device-info %s after DEL: %v, want it removed", infoFile, err)
	}
	if _, err := os.Stat(p.Attachments[1].Device.PluginInfoFile); err != nil {
		t.Errorf("the device plugin's own file must stay: %v", err)
	}
}

// A delegate that writes its own device-info (a vDPA or vhost-user plugin)
// is the one reported.
func TestAddDeviceInfoFromDelegate(t *testing.T) {
	f := newFixture(t)
	p, infoFile := devicePlan(t, "c1")
	own := &nadv1.DeviceInfo{Type: nadv1.DeviceInfoTypeVHostUser, Version: nadv1.DeviceInfoVersion, VhostUser: &nadv1.VhostDevice{Mode: "server", Path: "/var/run/vhu/sock0"}}
	f.invoker.onAdd = map[string]func(){blueName: func() {
		data, _ := json.Marshal(own)
		if err := os.WriteFile(infoFile, data, 0o644); err != nil {
			t.Error(err)
		}
	}}
	if _, err := f.attacher.addPlan(context.Background(), p, "1.0.0"); err != nil {
		t.Fatal(err)
	}
	if got := statusOf(t, f.recorder, "net1").DeviceInfo; !reflect.DeepEqual(got, own) {
		t.Errorf("network-status device-info = %+v, want the delegate's %+v", got, own)
	}
}

// A failed ADD leaves no device-info file behind.
func TestAddDeviceInfoRollback(t *testing.T) {
	f := newFixture(t)
	p, infoFile := devicePlan(t, "c1")
	f.invoker.fail["ADD "+greenName] = delegateError("bridge", types.ErrInternal, "no bridge")
	if _, err := f.attacher.addPlan(context.Background(), p, "1.0.0"); err == nil {
		t.Fatal("ADD did not fail")
	}
	if _, err := os.Stat(infoFile); !os.IsNotExist(err) {
		t.Errorf("device-info %s after a failed ADD: %v, want it removed", infoFile, err)
	}
}

// fakeClaims records RecordDeviceStatus calls.
type fakeClaims struct {
	written map[string]devices.DeviceStatus // by claim device name
	err     error
}

func (f *fakeClaims) RecordDeviceStatus(_ context.Context, dev devices.ClaimDevice, st devices.DeviceStatus) error {
	if f.written == nil {
		f.written = map[string]devices.DeviceStatus{}
	}
	f.written[dev.Namespace+"/"+dev.Name+"/"+dev.Device] = st
	return f.err
}

// claimedPlan is testPlan with net1's device from a DRA claim and net2's
// from a device plugin.
func claimedPlan() *plan.Plan {
	p := testPlan("c1", "1.0.0")
	p.Attachments[1].Device = &plan.Device{Device: devices.Device{Resource: "example.com/vf", ID: "0000:3b:02.1",
		Claim: &devices.ClaimDevice{Namespace: "ns1", Name: "net", Driver: "braid.test", Pool: "node1", Device: "vf0"}}}
	p.Attachments[2].Device = &plan.Device{Device: devices.Device{Resource: "example.com/pci", ID: "0000:5e:00.1"}}
	return p
}

// Devices from DRA claims get the interface, IPs and MAC they became and a
// Ready condition written back; a claim that cannot take them does not
// fail the ADD.
func TestAddClaimNetworkData(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"written", nil},
		{"the API server drops networkData", fmt.Errorf("record: %w", devices.ErrNetworkDataUnsupported)},
		{"the write fails", errors.New("forbidden")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			claims := &fakeClaims{err: tc.err}
			f.attacher.Claims = claims
			if _, err := f.attacher.addPlan(context.Background(), claimedPlan(), "1.0.0"); err != nil {
				t.Fatalf("ADD: %v", err)
			}
			want := map[string]devices.DeviceStatus{"ns1/net/vf0": {
				Network: &devices.NetworkData{InterfaceName: "net1", IPs: []string{"10.1.1.5/24"}, HardwareAddress: "0a:00:00:00:01:01"},
				Ready:   true, Reason: devices.ReasonConfigured, Message: "interface net1 of pod ns1/web (network ns1/blue)",
			}}
			if !reflect.DeepEqual(claims.written, want) {
				t.Errorf("device status written %+v, want %+v (only the claimed device)", claims.written, want)
			}
		})
	}
}

// A claimed device whose ADD failed is told so: Ready False with the
// delegate's message, no network data.
func TestAddClaimFailed(t *testing.T) {
	f := newFixture(t)
	claims := &fakeClaims{}
	f.attacher.Claims = claims
	f.invoker.fail["ADD "+blueName] = delegateError("sriov", types.ErrInternal, "VF 0000:3b:02.1 is gone")
	if _, err := f.attacher.addPlan(context.Background(), claimedPlan(), "1.0.0"); err == nil {
		t.Fatal("ADD did not fail")
	}
	st, ok := claims.written["ns1/net/vf0"]
	if !ok || st.Ready || st.Network != nil || st.Reason != devices.ReasonAttachFailed || !strings.Contains(st.Message, "VF 0000:3b:02.1 is gone") || !strings.Contains(st.Message, "net1") {
		t.Errorf("device status written %+v, want Ready false with the delegate's message naming net1", claims.written)
	}
}

func TestNetworkData(t *testing.T) {
	res := greenResult()
	got := networkData("net2", res)
	want := devices.NetworkData{InterfaceName: "net2", IPs: []string{"10.2.2.5/24"}, HardwareAddress: "0a:00:00:00:02:01"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("networkData = %+v, want %+v", got, want)
	}
	// A result that ties no IP to an interface: every IP is the pod's.
	res.IPs[0].Interface = nil
	res.Interfaces = nil
	got = networkData("net2", res)
	want = devices.NetworkData{InterfaceName: "net2", IPs: []string{"10.2.2.5/24"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("networkData without interfaces = %+v, want %+v", got, want)
	}
}
