package devices

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
)

func TestInfoDirNames(t *testing.T) {
	if got, want := InfoDir("").PluginFile("intel.com/sriov_netdevice", "0000:3b:02.1"), "/var/run/k8s.cni.cncf.io/devinfo/dp/intel.com-sriov_netdevice-0000:3b:02.1-device.json"; got != want {
		t.Errorf("PluginFile = %s, want %s", got, want)
	}
	if got, want := InfoDir("/d").CNIFile("ns1/sriov-a", "c0ffee", "net1"), "/d/cni/ns1-sriov-a-c0ffee-net1-device.json"; got != want {
		t.Errorf("CNIFile = %s, want %s", got, want)
	}
}

// The device plugin's file is copied for the delegate, read back for
// network-status, replaced on a retry, and removed at DEL.
func TestDeviceInfoRoundTrip(t *testing.T) {
	dir := InfoDir(t.TempDir())
	want := &nadv1.DeviceInfo{Type: nadv1.DeviceInfoTypePCI, Version: nadv1.DeviceInfoVersion, Pci: &nadv1.PciDevice{PciAddress: "0000:3b:02.1", PfPciAddress: "0000:3b:00.0"}}
	pluginFile := dir.PluginFile("example.com/vf", "0000:3b:02.1")
	if err := os.MkdirAll(filepath.Dir(pluginFile), 0o755); err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(want)
	if err := os.WriteFile(pluginFile, data, 0o644); err != nil {
		t.Fatal(err)
	}
	cniFile := dir.CNIFile("ns1/vf", "c1", "net1")
	for range 2 { // the second time replaces what the first left
		if err := Prepare(pluginFile, cniFile); err != nil {
			t.Fatal(err)
		}
	}
	got, err := Load(cniFile)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("device-info read back = %+v, want %+v", got, want)
	}
	if info, err := os.Stat(filepath.Dir(cniFile)); err != nil || info.Mode().Perm() != 0o755 {
		t.Errorf("cni dir: %v, %v; want mode 0755", info, err)
	}
	if err := Remove(cniFile); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(cniFile); !os.IsNotExist(err) {
		t.Errorf("after Remove: %v", err)
	}
	if _, err := os.Stat(pluginFile); err != nil {
		t.Errorf("the device plugin's file must stay: %v", err)
	}
	if err := Remove(cniFile); err != nil {
		t.Errorf("second Remove: %v", err)
	}
}

func TestDeviceInfoNoPluginFile(t *testing.T) {
	dir := InfoDir(t.TempDir())
	cniFile := dir.CNIFile("ns1/vf", "c1", "net1")
	if err := Prepare(dir.PluginFile("r", "x"), cniFile); err != nil {
		t.Fatalf("no device plugin file: %v, want no error", err)
	}
	if info, err := Load(cniFile); info != nil || err != nil {
		t.Errorf("Load of a file nobody wrote = %v, %v; want nil, nil", info, err)
	}
	bad := filepath.Join(string(dir), "bad.json")
	if err := os.WriteFile(bad, []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(bad); err == nil {
		t.Error("Load of broken JSON: no error")
	}
}
