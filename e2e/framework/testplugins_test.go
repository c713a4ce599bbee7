package framework

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/containernetworking/plugins/pkg/testutils"
	"github.com/vishvananda/netlink"

	"github.com/braid-cni/braid/internal/testutil"
)

// The test CNI plugins under e2e/testdata/plugins, run for real through
// libcni: they are tools of the real-node tests, and a broken one would
// send those looking for faults in braid. vfmove moves links between
// namespaces and needs root; record touches nothing and runs anywhere.

// requireRoot skips the test unless it runs as root, or fails it then when
// the environment variable CI is true: CI must run everything.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
		t.Fatal("needs root (network namespaces), and CI=true")
	}
	t.Skip("needs root (network namespaces)")
}

// referencePlugins returns bin/plugins, skipping the test if the static
// IPAM plugin is not there, or failing it then when CI is true.
func referencePlugins(t *testing.T) string {
	t.Helper()
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	ref := filepath.Join(root, "bin", "plugins")
	if _, err := os.Stat(filepath.Join(ref, "static")); err != nil {
		if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
			t.Fatalf("reference plugins missing with CI=true: %v", err)
		}
		t.Skipf("reference plugins missing (run `make tools`): %v", err)
	}
	return ref
}

// buildTestPlugins builds the named plugins of e2e/testdata/plugins,
// statically as the node installs them, into a temporary directory and
// returns it.
func buildTestPlugins(t *testing.T, names ...string) string {
	t.Helper()
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, name := range names {
		build := exec.Command("go", "build", "-o", filepath.Join(dir, name), "./e2e/testdata/plugins/"+name)
		build.Dir, build.Env = root, append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("build %s: %v\n%s", name, err, out)
		}
	}
	return dir
}

// shortName returns prefix and random hex, 10 characters: unique link names
// well within IFNAMSIZ.
func shortName(t *testing.T, prefix string) string {
	t.Helper()
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return prefix + hex.EncodeToString(b)
}

// hostVeth creates a veth pair whose one end, named dev, is the test
// device, and deletes it again when the test ends wherever it is.
func hostVeth(t *testing.T, dev string) {
	t.Helper()
	peer := shortName(t, "bp")
	if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: dev}, PeerName: peer}); err != nil {
		t.Fatalf("create veth %s/%s: %v", dev, peer, err)
	}
	t.Cleanup(func() {
		for _, name := range []string{dev, peer} {
			if l, err := netlink.LinkByName(name); err == nil {
				_ = netlink.LinkDel(l)
			}
		}
	})
}

// newTestNS returns a new netns, removed when the test ends (a veth left
// inside goes with it).
func newTestNS(t *testing.T) ns.NetNS {
	t.Helper()
	netns, err := testutils.NewNS()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = netns.Close()
		_ = testutils.UnmountNS(netns)
	})
	return netns
}

// linksIn returns the names of the links in netns.
func linksIn(t *testing.T, netns ns.NetNS) []string {
	t.Helper()
	var names []string
	err := netns.Do(func(ns.NetNS) error {
		links, err := netlink.LinkList()
		for _, l := range links {
			names = append(names, l.Attrs().Name)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	return names
}

// addrsOf returns the addresses of link name in netns, nil if it is not
// there.
func addrsOf(t *testing.T, netns ns.NetNS, name string) []string {
	t.Helper()
	var addrs []string
	_ = netns.Do(func(ns.NetNS) error {
		l, err := netlink.LinkByName(name)
		if err != nil {
			return err
		}
		list, err := netlink.AddrList(l, netlink.FAMILY_ALL)
		for _, a := range list {
			addrs = append(addrs, a.IPNet.String())
		}
		return err
	})
	return addrs
}

func onHost(name string) bool {
	_, err := netlink.LinkByName(name)
	return err == nil
}

// staticIPAM is the static IPAM plugin's config for one address.
func staticIPAM(address string) map[string]any {
	return map[string]any{"type": "static", "addresses": []any{map[string]string{"address": address}}}
}

// vfmoveList is a network of vfmove with the given IPAM. topDeviceID, if
// set, is the top-level "deviceID" key; the plugin declares the deviceID
// capability.
func vfmoveList(t *testing.T, cniVersion, topDeviceID string, ipam map[string]any) *libcni.NetworkConfigList {
	t.Helper()
	plugin := map[string]any{
		"type":         "vfmove",
		"capabilities": map[string]bool{"deviceID": true},
		"ipam":         ipam,
	}
	if topDeviceID != "" {
		plugin["deviceID"] = topDeviceID
	}
	return confList(t, map[string]any{"cniVersion": cniVersion, "name": "vfmove-net", "plugins": []any{plugin}})
}

func confList(t *testing.T, list map[string]any) *libcni.NetworkConfigList {
	t.Helper()
	data, err := json.Marshal(list)
	if err != nil {
		t.Fatal(err)
	}
	conf, err := libcni.NetworkConfFromBytes(data)
	if err != nil {
		t.Fatal(err)
	}
	return conf
}

func TestVFMovePlugin(t *testing.T) {
	requireRoot(t)
	cni := libcni.NewCNIConfigWithCacheDir([]string{buildTestPlugins(t, "vfmove"), referencePlugins(t)}, t.TempDir(), nil)
	for _, v := range testutil.SpecVersions() {
		t.Run(v, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			dev, netns := shortName(t, "bt"), newTestNS(t)
			hostVeth(t, dev)
			// The capability arg wins over the top-level key, which names
			// no device here.
			list := vfmoveList(t, v, "btnothere", staticIPAM("10.250.7.2/24"))
			rt := &libcni.RuntimeConf{ContainerID: "c-" + dev, NetNS: netns.Path(), IfName: "net1", CapabilityArgs: map[string]any{"deviceID": dev}}

			res, err := cni.AddNetworkList(ctx, list, rt)
			if err != nil {
				t.Fatalf("ADD: %v", err)
			}
			if res.Version() != v {
				t.Errorf("ADD result version %s, want %s", res.Version(), v)
			}
			r, err := current.NewResultFromResult(res)
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Interfaces) != 1 || r.Interfaces[0].Name != "net1" || r.Interfaces[0].Sandbox != netns.Path() || r.Interfaces[0].Mac == "" {
				t.Errorf("ADD result interfaces %v, want net1 with a MAC in %s", r.Interfaces, netns.Path())
			}
			if len(r.IPs) != 1 || r.IPs[0].Address.String() != "10.250.7.2/24" {
				t.Errorf("ADD result IPs %v, want 10.250.7.2/24", r.IPs)
			}
			if onHost(dev) {
				t.Errorf("after ADD: %s still on the host", dev)
			}
			if got := addrsOf(t, netns, "net1"); !slices.Contains(got, "10.250.7.2/24") {
				t.Errorf("after ADD: addresses of net1 in the netns %v, want 10.250.7.2/24", got)
			}
			if v != "0.3.1" {
				if err := cni.CheckNetworkList(ctx, list, rt); err != nil {
					t.Errorf("CHECK: %v", err)
				}
			}

			for i := range 2 { // DEL again finds nothing to do, and succeeds
				if err := cni.DelNetworkList(ctx, list, rt); err != nil {
					t.Fatalf("DEL %d: %v", i+1, err)
				}
			}
			if !onHost(dev) {
				t.Errorf("after DEL: %s not back on the host", dev)
			}
			if got := linksIn(t, netns); !slices.Equal(got, []string{"lo"}) {
				t.Errorf("after DEL: links in the netns %v, want only lo", got)
			}
		})
	}
}

func TestVFMovePluginTopLevelDeviceID(t *testing.T) {
	requireRoot(t)
	cni := libcni.NewCNIConfigWithCacheDir([]string{buildTestPlugins(t, "vfmove"), referencePlugins(t)}, t.TempDir(), nil)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	dev, netns := shortName(t, "bt"), newTestNS(t)
	hostVeth(t, dev)
	list := vfmoveList(t, "1.0.0", dev, staticIPAM("10.250.7.3/24"))
	rt := &libcni.RuntimeConf{ContainerID: "c-" + dev, NetNS: netns.Path(), IfName: "net2"}
	if _, err := cni.AddNetworkList(ctx, list, rt); err != nil {
		t.Fatalf("ADD: %v", err)
	}
	if got := linksIn(t, netns); !slices.Equal(got, []string{"lo", "net2"}) || onHost(dev) {
		t.Errorf("after ADD: links in the netns %v, want lo and net2 (%s on the host: %v)", got, dev, onHost(dev))
	}
	if err := cni.DelNetworkList(ctx, list, rt); err != nil {
		t.Fatalf("DEL: %v", err)
	}
	if !onHost(dev) {
		t.Errorf("after DEL: %s not back on the host", dev)
	}

	noID := vfmoveList(t, "1.0.0", "", staticIPAM("10.250.7.3/24"))
	if _, err := cni.AddNetworkList(ctx, noID, rt); err == nil || !strings.Contains(err.Error(), "deviceID") {
		t.Errorf("ADD without a deviceID: got %v, want an error about deviceID", err)
	}
}

func TestVFMovePluginFailures(t *testing.T) {
	requireRoot(t)
	cni := libcni.NewCNIConfigWithCacheDir([]string{buildTestPlugins(t, "vfmove"), referencePlugins(t)}, t.TempDir(), nil)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	netns := newTestNS(t)

	missing := shortName(t, "bt")
	rt := &libcni.RuntimeConf{ContainerID: "c-" + missing, NetNS: netns.Path(), IfName: "net1", CapabilityArgs: map[string]any{"deviceID": missing}}
	_, err := cni.AddNetworkList(ctx, vfmoveList(t, "1.0.0", "", staticIPAM("10.250.7.4/24")), rt)
	if err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("ADD of a missing device: got %v, want an error naming %s", err, missing)
	}
	if got := linksIn(t, netns); !slices.Equal(got, []string{"lo"}) || onHost(missing) {
		t.Errorf("after the failed ADD: links in the netns %v, want only lo (%s on the host: %v)", got, missing, onHost(missing))
	}

	// A failure after the move (net1 is taken in the netns) puts the
	// device back on the host under its own name.
	dev := shortName(t, "bt")
	hostVeth(t, dev)
	err = netns.Do(func(ns.NetNS) error {
		return netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "net1"}, PeerName: "taken"})
	})
	if err != nil {
		t.Fatal(err)
	}
	rt.CapabilityArgs = map[string]any{"deviceID": dev}
	leases := t.TempDir()
	hostLocal := map[string]any{"type": "host-local", "dataDir": leases, "ranges": [][]map[string]string{{{"subnet": "10.250.9.0/24"}}}}
	if _, err := cni.AddNetworkList(ctx, vfmoveList(t, "1.0.0", "", hostLocal), rt); err == nil {
		t.Error("ADD onto a taken interface name: got no error")
	}
	if files, err := filepath.Glob(filepath.Join(leases, "vfmove-net", "10.*")); err != nil || len(files) != 0 {
		t.Errorf("after the rolled back ADD: host-local leases %v (%v), want none", files, err)
	}
	if got := linksIn(t, netns); !slices.Equal(got, []string{"lo", "net1", "taken"}) || !onHost(dev) {
		t.Errorf("after the rolled back ADD: links in the netns %v, want lo and the veth net1/taken (%s on the host: %v)", got, dev, onHost(dev))
	}
	if got := addrsOf(t, netns, "net1"); len(got) != 0 {
		t.Errorf("after the rolled back ADD: the other net1 has addresses %v", got)
	}

	// DEL of a netns that is gone succeeds: there is nothing to undo.
	rt.NetNS = filepath.Join(t.TempDir(), "gone")
	if err := cni.DelNetworkList(ctx, vfmoveList(t, "1.0.0", "", staticIPAM("10.250.7.4/24")), rt); err != nil {
		t.Errorf("DEL with the netns gone: %v", err)
	}
}

// recorded reads the JSON lines of a record plugin's file.
func recorded(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var calls []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var c map[string]any
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatalf("%s: line %q: %v", path, sc.Text(), err)
		}
		calls = append(calls, c)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return calls
}

func TestRecordPlugin(t *testing.T) {
	cni := libcni.NewCNIConfigWithCacheDir([]string{buildTestPlugins(t, "record")}, t.TempDir(), nil)
	for _, v := range testutil.SpecVersions() {
		t.Run(v, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			first, second := filepath.Join(t.TempDir(), "first.jsonl"), filepath.Join(t.TempDir(), "second.jsonl")
			list := confList(t, map[string]any{"cniVersion": v, "name": "record-net", "plugins": []any{
				map[string]any{"type": "record", "recordFile": first, "ip": "10.250.8.5/24", "deviceID": "0000:00:01.0",
					"capabilities": map[string]bool{"deviceID": true}},
				map[string]any{"type": "record", "recordFile": second}, // chained: returns the prevResult
			}})
			rt := &libcni.RuntimeConf{ContainerID: "rec1", NetNS: "/run/netns/not-used", IfName: "net3",
				Args: [][2]string{{"K8S_POD_NAME", "p"}}, CapabilityArgs: map[string]any{"deviceID": "0000:00:01.0"}}

			res, err := cni.AddNetworkList(ctx, list, rt)
			if err != nil {
				t.Fatalf("ADD: %v", err)
			}
			r, err := current.NewResultFromResult(res)
			if err != nil {
				t.Fatal(err)
			}
			if res.Version() != v || len(r.Interfaces) != 1 || r.Interfaces[0].Name != "net3" || r.Interfaces[0].Sandbox != rt.NetNS ||
				len(r.IPs) != 1 || r.IPs[0].Address.String() != "10.250.8.5/24" {
				t.Errorf("ADD result %s %+v, want %s with net3 in %s and 10.250.8.5/24", res.Version(), r, v, rt.NetNS)
			}
			if err := cni.DelNetworkList(ctx, list, rt); err != nil {
				t.Fatalf("DEL: %v", err)
			}

			calls := recorded(t, first)
			if len(calls) != 2 || calls[0]["command"] != "ADD" || calls[1]["command"] != "DEL" {
				t.Fatalf("%s: got %v, want an ADD and a DEL line", first, calls)
			}
			for _, c := range calls {
				conf, _ := c["config"].(map[string]any)
				rc, _ := conf["runtimeConfig"].(map[string]any)
				if c["containerID"] != "rec1" || c["netns"] != rt.NetNS || c["ifName"] != "net3" ||
					!strings.Contains(c["args"].(string), "K8S_POD_NAME=p") || c["path"] == "" {
					t.Errorf("%s call: environment %v, want rec1, %s, net3 and K8S_POD_NAME=p in args", c["command"], c, rt.NetNS)
				}
				if conf["cniVersion"] != v || conf["deviceID"] != "0000:00:01.0" || rc["deviceID"] != "0000:00:01.0" {
					t.Errorf("%s call: config %v, want cniVersion %s, deviceID and runtimeConfig.deviceID 0000:00:01.0", c["command"], conf, v)
				}
			}
			chained := recorded(t, second)
			if len(chained) != 2 || chained[0]["command"] != "ADD" {
				t.Fatalf("%s: got %v, want an ADD and a DEL line", second, chained)
			}
			conf, _ := chained[0]["config"].(map[string]any)
			if _, ok := conf["prevResult"]; !ok || conf["runtimeConfig"] != nil {
				t.Errorf("chained ADD config %v, want a prevResult and no runtimeConfig (no capability declared)", conf)
			}
		})
	}
}

func TestRecordPluginNeedsRecordFile(t *testing.T) {
	cni := libcni.NewCNIConfigWithCacheDir([]string{buildTestPlugins(t, "record")}, t.TempDir(), nil)
	list := confList(t, map[string]any{"cniVersion": "1.0.0", "name": "record-net", "plugins": []any{map[string]any{"type": "record"}}})
	_, err := cni.AddNetworkList(t.Context(), list, &libcni.RuntimeConf{ContainerID: "rec2", NetNS: "/run/netns/not-used", IfName: "net1"})
	var cniErr *types.Error
	if !errors.As(err, &cniErr) || cniErr.Code != types.ErrInvalidNetworkConfig || !strings.Contains(err.Error(), "recordFile") {
		t.Errorf("ADD without recordFile: got %v, want CNI error 7 naming recordFile", err)
	}
}
