package e2e

import (
	"bufio"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/braid-cni/braid/devices"
)

// recordLine is one call the recording test plugin saw.
type recordLine struct {
	Command     string         `json:"command"`
	ContainerID string         `json:"containerID"`
	IfName      string         `json:"ifName"`
	Config      map[string]any `json:"config"`
}

// deviceNode is a node whose kubelet allocated devices to pods: this tier
// has no kubelet, so braid reads the device manager's checkpoint (its
// fallback when the pod-resources socket does not answer), written here in
// the kubelet's own format. The delegates "sriov" and "host-device" are the
// recording plugin, so the test sees exactly what each receives.
type deviceNode struct {
	*node
	record     string
	checkpoint string
	infoDir    devices.InfoDir
}

func newDeviceNode(t *testing.T, mode string) *deviceNode {
	t.Helper()
	n := newNode(t, mode, "1.0.0")
	bin := n.testPlugin("record", "sriov", "host-device")
	d := &deviceNode{
		node:       n,
		record:     filepath.Join(n.dir, "record.jsonl"),
		checkpoint: filepath.Join(n.dir, "kubelet_internal_checkpoint"),
		infoDir:    devices.InfoDir(filepath.Join(n.dir, "devinfo")),
	}
	n.braidConf["binDir"] = bin + ":" + shared.pluginsDir
	n.braidConf["podResourcesSocket"] = filepath.Join(n.dir, "no-kubelet", "kubelet.sock")
	n.braidConf["deviceCheckpoint"] = d.checkpoint
	n.braidConf["deviceInfoDir"] = string(d.infoDir)
	return d
}

// deviceNAD creates a NAD annotated with resourceName whose delegate records
// what it gets.
func (d *deviceNode) deviceNAD(name, resourceName string, config map[string]any) {
	d.t.Helper()
	config["recordFile"] = d.record
	data, err := json.Marshal(config)
	if err != nil {
		d.t.Fatal(err)
	}
	obj := &nadv1.NetworkAttachmentDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: d.namespace, Annotations: map[string]string{devices.ResourceNameKey: resourceName}},
		Spec:       nadv1.NetworkAttachmentDefinitionSpec{Config: string(data)},
	}
	if _, err := d.nads.K8sCniCncfIoV1().NetworkAttachmentDefinitions(d.namespace).Create(d.t.Context(), obj, metav1.CreateOptions{}); err != nil {
		d.t.Fatalf("create NAD %s: %v", name, err)
	}
}

// allocate writes the kubelet's checkpoint: the pod with uid holds these
// devices (resource -> IDs), as the device manager records them since 1.20.
func (d *deviceNode) allocate(uid string, devs map[string][]string) {
	d.t.Helper()
	type entry struct {
		PodUID, ContainerName, ResourceName string
		DeviceIDs                           map[string][]string
		AllocResp                           []byte
	}
	var cp struct {
		Data struct {
			PodDeviceEntries  []entry
			RegisteredDevices map[string][]string
		}
		Checksum uint64
	}
	cp.Data.RegisteredDevices = devs
	for res, ids := range devs {
		cp.Data.PodDeviceEntries = append(cp.Data.PodDeviceEntries, entry{PodUID: uid, ContainerName: "c", ResourceName: res, DeviceIDs: map[string][]string{"0": ids}, AllocResp: []byte{}})
	}
	writeJSON(d.t, d.checkpoint, cp)
}

// pluginInfo writes the device plugin's device-info file for a device.
func (d *deviceNode) pluginInfo(resourceName, id string) *nadv1.DeviceInfo {
	d.t.Helper()
	info := &nadv1.DeviceInfo{Type: nadv1.DeviceInfoTypePCI, Version: nadv1.DeviceInfoVersion, Pci: &nadv1.PciDevice{PciAddress: id, PfPciAddress: "0000:3b:00.0"}}
	path := d.infoDir.PluginFile(resourceName, id)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		d.t.Fatal(err)
	}
	writeJSON(d.t, path, info)
	return info
}

// recorded reads the recording plugin's calls for one verb, by interface.
func (d *deviceNode) recorded(command string) map[string]recordLine {
	d.t.Helper()
	f, err := os.Open(d.record)
	if err != nil {
		d.t.Fatal(err)
	}
	defer f.Close()
	out := map[string]recordLine{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l recordLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			d.t.Fatalf("record line %q: %v", sc.Text(), err)
		}
		if l.Command == command {
			out[l.IfName] = l
		}
	}
	return out
}

// TestDeviceBackedDelegateConfig: the exact config a device-backed delegate
// receives. An SR-IOV CNI-style plugin gets the allocated device as
// "deviceID" in its config; one that declares the capabilities also gets
// deviceID and CNIDeviceInfoFile in runtimeConfig; host-device gets the PCI
// address as pciBusID too. Devices go out in sorted order, one per network;
// network-status reports the device plugin's device-info; DEL hands each
// delegate the same device and braid removes its device-info copies.
func TestDeviceBackedDelegateConfig(t *testing.T) {
	inModes(t, func(t *testing.T, mode string) {
		d := newDeviceNode(t, mode)
		d.deviceNAD("sriov-a", "intel.com/sriov_netdevice", map[string]any{
			"cniVersion": "1.0.0", "name": "sriov-a", "type": "sriov", "vlan": 100, "spoofchk": "on", "ip": "10.56.0.10/24",
		})
		d.deviceNAD("sriov-caps", "intel.com/sriov_netdevice", map[string]any{
			"cniVersion": "1.0.0", "name": "sriov-caps", "type": "sriov", "ip": "10.56.1.10/24",
			"capabilities": map[string]any{"deviceID": true, "CNIDeviceInfoFile": true},
		})
		d.deviceNAD("hostdev", "example.com/pci", map[string]any{
			"cniVersion": "1.0.0", "name": "hostdev", "type": "host-device", "ip": "10.57.0.10/24",
			"capabilities": map[string]any{"deviceID": true},
		})
		pod := d.createPod("vfs", map[string]string{nadv1.NetworkAttachmentAnnot: "sriov-a, sriov-caps, hostdev@hd0"})
		d.allocate(string(pod.UID), map[string][]string{
			"intel.com/sriov_netdevice": {"0000:3b:02.4", "0000:3b:02.1"},
			"example.com/pci":           {"0000:5e:00.1"},
		})
		info := d.pluginInfo("intel.com/sriov_netdevice", "0000:3b:02.1")
		sb := d.sandbox(pod)
		sb.mustAdd()

		adds := d.recorded("ADD")
		cniFile := func(network, ifName string) string {
			return d.infoDir.CNIFile(d.namespace+"/"+network, sb.containerID, ifName)
		}
		want := map[string]map[string]any{
			// No capabilities declared: libcni passes no runtimeConfig, and
			// the plugin reads "deviceID" from its config, as SR-IOV CNI does.
			"net1": {"deviceID": "0000:3b:02.1", "vlan": 100.0, "spoofchk": "on"},
			"net2": {"deviceID": "0000:3b:02.4", "runtimeConfig": map[string]any{
				"deviceID": "0000:3b:02.4", "CNIDeviceInfoFile": cniFile("sriov-caps", "net2"),
			}},
			"hd0": {"deviceID": "0000:5e:00.1", "pciBusID": "0000:5e:00.1", "runtimeConfig": map[string]any{"deviceID": "0000:5e:00.1"}},
		}
		for ifName, wantKeys := range want {
			got, ok := adds[ifName]
			if !ok {
				t.Errorf("no ADD recorded for %s; recorded: %v", ifName, keys(adds))
				continue
			}
			for k, v := range wantKeys {
				if !reflect.DeepEqual(got.Config[k], v) {
					t.Errorf("%s: config %q = %#v, want %#v", ifName, k, got.Config[k], v)
				}
			}
			if _, ok := wantKeys["runtimeConfig"]; !ok && got.Config["runtimeConfig"] != nil {
				t.Errorf("%s: runtimeConfig %v, want none (no capability declared)", ifName, got.Config["runtimeConfig"])
			}
			if _, ok := wantKeys["pciBusID"]; !ok && got.Config["pciBusID"] != nil {
				t.Errorf("%s: pciBusID %v, want none (not host-device)", ifName, got.Config["pciBusID"])
			}
		}

		statuses := networkStatus(t, d.getPod("vfs"))
		byIf := map[string]nadv1.NetworkStatus{}
		for _, s := range statuses {
			byIf[s.Interface] = s
		}
		if got := byIf["net1"].DeviceInfo; !reflect.DeepEqual(got, info) {
			t.Errorf("network-status device-info of net1 = %+v, want the device plugin's %+v", got, info)
		}
		if got := byIf["hd0"].DeviceInfo; got != nil {
			t.Errorf("hd0's device has no device-info file, network-status says %+v", got)
		}
		if _, err := os.Stat(cniFile("sriov-a", "net1")); err != nil {
			t.Errorf("braid's device-info copy for net1: %v", err)
		}

		sb.mustDel()
		dels := d.recorded("DEL")
		for ifName, wantKeys := range want {
			if got := dels[ifName].Config["deviceID"]; got != wantKeys["deviceID"] {
				t.Errorf("DEL %s: deviceID %v, want %v (the device ADD got)", ifName, got, wantKeys["deviceID"])
			}
		}
		entries, _ := os.ReadDir(filepath.Join(string(d.infoDir), "cni"))
		if len(entries) != 0 {
			t.Errorf("device-info files left after DEL: %v", entries)
		}
		if _, err := os.Stat(d.infoDir.PluginFile("intel.com/sriov_netdevice", "0000:3b:02.1")); err != nil {
			t.Errorf("the device plugin's own file must stay: %v", err)
		}
	})
}

// TestDeviceBackedRefusals: a pod naming a device-backed network without
// the devices for it gets CNI error 7 naming the resource and the pod's
// allocation, an InvalidNetworks event, and nothing is attached.
func TestDeviceBackedRefusals(t *testing.T) {
	inModes(t, func(t *testing.T, mode string) {
		for _, tc := range []struct {
			name     string
			networks string
			alloc    map[string][]string
			want     string
		}{
			{"resource not requested", "sriov-a", nil,
				"no device of resource intel.com/sriov_netdevice is allocated to the pod"},
			{"more networks than devices", "sriov-a, sriov-a@vf2", map[string][]string{"intel.com/sriov_netdevice": {"0000:3b:02.1"}},
				"every device of resource intel.com/sriov_netdevice allocated to the pod is used by another of its networks: request one more intel.com/sriov_netdevice (the pod's allocation: intel.com/sriov_netdevice=[0000:3b:02.1])"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				d := newDeviceNode(t, mode)
				d.deviceNAD("sriov-a", "intel.com/sriov_netdevice", map[string]any{"cniVersion": "1.0.0", "name": "sriov-a", "type": "sriov"})
				pod := d.createPod("vfs", map[string]string{nadv1.NetworkAttachmentAnnot: tc.networks})
				d.allocate(string(pod.UID), tc.alloc)
				sb := d.sandbox(pod)
				_, err := sb.add()
				var te *types.Error
				if !errors.As(err, &te) || te.Code != types.ErrInvalidNetworkConfig || !strings.Contains(te.Msg, tc.want) {
					t.Fatalf("ADD error %v, want code 7 saying %q", err, tc.want)
				}
				ev := waitWarning(t, d.node, pod.Name, "InvalidNetworks")
				if !strings.Contains(ev.Message, tc.want) {
					t.Errorf("event %q does not say %q", ev.Message, tc.want)
				}
				if _, err := os.Stat(d.record); !os.IsNotExist(err) {
					t.Errorf("a delegate ran for a refused pod: %v", err)
				}
				if links := sb.links(); len(links) != 0 {
					t.Errorf("interfaces left in the sandbox: %v", keys(links))
				}
				if j := d.journal(); len(j) != 0 {
					t.Errorf("journal entries left: %v", j)
				}
			})
		}
	})
}
