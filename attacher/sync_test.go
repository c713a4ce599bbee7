package attacher

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/braid-cni/braid/devices"
	"github.com/braid-cni/braid/internal/testutil"
	"github.com/braid-cni/braid/lock"
	"github.com/braid-cni/braid/nad"
	"github.com/braid-cni/braid/netconf"
	"github.com/braid-cni/braid/plan"
)

// syncFixture is the fixture with a plan builder over pod ns1/web and the
// NADs ns1/blue and ns1/green, and container c1 attached by ADD with the
// networks annotation networks.
type syncFixture struct {
	*fixture
	pod *corev1.Pod
	api *fakeAPI
	req Request
}

func newSyncFixture(t *testing.T, networks string) *syncFixture {
	t.Helper()
	f := newFixture(t)
	dir := t.TempDir()
	cluster := filepath.Join(dir, "cluster.conf")
	if err := os.WriteFile(cluster, conf("1.0.0", clusterName, "ptp"), 0o600); err != nil {
		t.Fatal(err)
	}
	nc, err := netconf.Parse(fmt.Appendf(nil, `{"cniVersion":"1.0.0","name":"braid","type":"braid","clusterNetwork":%q}`, cluster))
	if err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns1", Name: "web", UID: "uid-c1", Annotations: map[string]string{nadv1.NetworkAttachmentAnnot: networks}}}
	nadOf := func(name, pluginType string) *nadv1.NetworkAttachmentDefinition {
		return &nadv1.NetworkAttachmentDefinition{ObjectMeta: metav1.ObjectMeta{Namespace: "ns1", Name: name}, Spec: nadv1.NetworkAttachmentDefinitionSpec{Config: string(conf("1.0.0", name, pluginType))}}
	}
	api := &fakeAPI{
		pods: map[string]*corev1.Pod{"ns1/web": pod},
		nads: map[string]*nadv1.NetworkAttachmentDefinition{"ns1/blue": nadOf(blueName, "macvlan"), "ns1/green": nadOf(greenName, "bridge")},
	}
	f.attacher.Builder = &plan.Builder{Conf: nc, Pods: api, Resolver: &nad.Resolver{NADs: api}, Log: slog.New(slog.DiscardHandler)}
	req := Request{Request: plan.Request{ContainerID: "c1", NetNS: "/var/run/netns/c1", IfName: "eth0", Pod: plan.PodRef{Namespace: "ns1", Name: "web", UID: "uid-c1"}}, CNIVersion: "1.0.0"}
	if _, err := f.attacher.Add(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	f.invoker.reset()
	f.recorder.records, f.recorder.events = nil, nil
	return &syncFixture{fixture: f, pod: pod, api: api, req: req}
}

// journaledNames lists "ifname=network" of the journaled plan, with "!"
// after an attachment that has no result.
func (f *syncFixture) journaledNames(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, a := range f.journaled(t, "c1").Attachments {
		s := a.IfName + "=" + a.Network
		if len(a.Result) == 0 {
			s += "!"
		}
		out = append(out, s)
	}
	return out
}

func (f *syncFixture) eventsOf(eventType string) []string {
	var out []string
	for _, e := range f.recorder.events {
		if e.eventType == eventType {
			out = append(out, e.reason+": "+e.message)
		}
	}
	slices.Sort(out)
	return out
}

// TestSyncAdds: a network added to the annotation of a running pod is
// attached on the next free interface, journaled with its result, recorded
// in network-status, and told in one event; nothing else runs.
func TestSyncAdds(t *testing.T) {
	f := newSyncFixture(t, "blue")
	f.pod.Annotations[nadv1.NetworkAttachmentAnnot] = "blue, green"
	c, err := f.attacher.Sync(context.Background(), f.req)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Added) != 1 || len(c.Removed) != 0 {
		t.Errorf("change: added %v, removed %d", c.Added, len(c.Removed))
	}
	if got, want := f.invoker.seen("ADD", "DEL"), []string{"ADD green net2"}; !slices.Equal(got, want) {
		t.Errorf("delegates ran %q, want %q", got, want)
	}
	if got, want := f.journaledNames(t), []string{"eth0=cluster", "net1=ns1/blue", "net2=ns1/green"}; !slices.Equal(got, want) {
		t.Errorf("journal %q, want %q", got, want)
	}
	if len(f.recorder.records) != 1 || len(f.recorder.records[0].statuses) != 3 || f.recorder.records[0].statuses[2].Interface != "net2" {
		t.Errorf("network-status written %s, want one write listing eth0, net1 and net2", testutil.JSON(t, f.recorder.records))
	}
	if got, want := f.eventsOf("Normal"), []string{"AddedInterface: Add net2 [10.2.2.5/24] from ns1/green"}; !slices.Equal(got, want) {
		t.Errorf("events %q, want %q", got, want)
	}
	// Again: nothing to do.
	f.invoker.reset()
	if c, err := f.attacher.Sync(context.Background(), f.req); err != nil || !c.Empty() || len(f.invoker.seen()) != 0 {
		t.Errorf("second Sync = %+v, %v, ran %q; want nothing", c, err, f.invoker.seen())
	}
}

// TestSyncRemoves: an interface present since the pod's creation is
// unplugged: its DEL runs, the journal and network-status lose it, one
// event tells it, and the runtime's DEL later deletes only what is left.
func TestSyncRemoves(t *testing.T) {
	f := newSyncFixture(t, "blue, green")
	f.pod.Annotations[nadv1.NetworkAttachmentAnnot] = "green"
	if _, err := f.attacher.Sync(context.Background(), f.req); err != nil {
		t.Fatal(err)
	}
	if got, want := f.invoker.seen("ADD", "DEL"), []string{"DEL blue net1"}; !slices.Equal(got, want) {
		t.Errorf("delegates ran %q, want %q", got, want)
	}
	if got, want := f.journaledNames(t), []string{"eth0=cluster", "net2=ns1/green"}; !slices.Equal(got, want) {
		t.Errorf("journal %q, want %q", got, want)
	}
	if len(f.recorder.records) != 1 || len(f.recorder.records[0].statuses) != 2 {
		t.Errorf("network-status written %s, want eth0 and net2", testutil.JSON(t, f.recorder.records))
	}
	if got, want := f.eventsOf("Normal"), []string{"RemovedInterface: Remove net1 from ns1/blue"}; !slices.Equal(got, want) {
		t.Errorf("events %q, want %q", got, want)
	}
	f.invoker.reset()
	if err := f.attacher.Del(context.Background(), f.req); err != nil {
		t.Fatal(err)
	}
	if got, want := f.invoker.seen("DEL"), []string{"DEL green net2", "DEL cluster eth0"}; !slices.Equal(got, want) {
		t.Errorf("runtime DEL ran %q, want %q", got, want)
	}
}

// TestSyncFailedAddRollsBack: a hot-add whose delegate fails is deleted
// again; the pod keeps exactly what it had, one Warning names the network,
// plugin and message, and network-status is not rewritten.
func TestSyncFailedAddRollsBack(t *testing.T) {
	f := newSyncFixture(t, "blue")
	before := testutil.JSON(t, f.journaled(t, "c1"))
	f.invoker.fail["ADD green"] = delegateError("bridge", types.ErrInternal, "no master")
	f.pod.Annotations[nadv1.NetworkAttachmentAnnot] = "blue, green"
	_, err := f.attacher.Sync(context.Background(), f.req)
	testutil.WantCNIError(t, err, types.ErrInternal, "ns1/green", "net2")
	if got, want := f.invoker.seen("ADD", "DEL"), []string{"ADD green net2", "DEL green net2"}; !slices.Equal(got, want) {
		t.Errorf("delegates ran %q, want %q", got, want)
	}
	if after := testutil.JSON(t, f.journaled(t, "c1")); after != before {
		t.Errorf("journal after the failed hot-add:\n%s\nwant it as before:\n%s", after, before)
	}
	warnings := f.eventsOf("Warning")
	if len(warnings) != 1 || !strings.Contains(warnings[0], "net2 (ns1/green, bridge): no master") {
		t.Errorf("warnings %q, want one naming net2, ns1/green, bridge and the message", warnings)
	}
	if len(f.recorder.records) != 0 {
		t.Errorf("network-status rewritten after a failed hot-add: %s", testutil.JSON(t, f.recorder.records))
	}
}

// TestSyncSettles: what an interrupted Sync journaled without a result may
// or may not be attached: the next Sync deletes it before anything else,
// and attaches it anew when the pod still asks for it.
func TestSyncSettles(t *testing.T) {
	for _, tt := range []struct {
		networks string
		want     []string
		journal  []string
	}{
		{"blue", []string{"DEL green net2"}, []string{"eth0=cluster", "net1=ns1/blue"}},
		{"blue, green", []string{"DEL green net2", "ADD green net2"}, []string{"eth0=cluster", "net1=ns1/blue", "net2=ns1/green"}},
	} {
		t.Run(tt.networks, func(t *testing.T) {
			f := newSyncFixture(t, "blue")
			p := f.journaled(t, "c1")
			p.Attachments = append(p.Attachments, plan.Attachment{IfName: "net2", Network: "ns1/green", Selected: true, Config: conf("1.0.0", greenName, "bridge")})
			if err := f.journal.Save(p); err != nil {
				t.Fatal(err)
			}
			f.pod.Annotations[nadv1.NetworkAttachmentAnnot] = tt.networks
			if _, err := f.attacher.Sync(context.Background(), f.req); err != nil {
				t.Fatal(err)
			}
			if got := f.invoker.seen("ADD", "DEL"); !slices.Equal(got, tt.want) {
				t.Errorf("delegates ran %q, want %q", got, tt.want)
			}
			if got := f.journaledNames(t); !slices.Equal(got, tt.journal) {
				t.Errorf("journal %q, want %q", got, tt.journal)
			}
		})
	}
}

// TestSyncNothingToDo: no journal entry (the runtime's DEL came first) or
// an ADD not finished: Sync runs nothing.
func TestSyncNothingToDo(t *testing.T) {
	f := newSyncFixture(t, "blue")
	f.pod.Annotations[nadv1.NetworkAttachmentAnnot] = "blue, green"
	p := f.journaled(t, "c1")
	p.Attachments[0].Result = nil
	if err := f.journal.Save(p); err != nil {
		t.Fatal(err)
	}
	if c, err := f.attacher.Sync(context.Background(), f.req); c != nil || err != nil {
		t.Errorf("ADD unfinished: Sync = %+v, %v; want nothing", c, err)
	}
	if err := f.journal.Remove("c1"); err != nil {
		t.Fatal(err)
	}
	if c, err := f.attacher.Sync(context.Background(), f.req); c != nil || err != nil {
		t.Errorf("no journal: Sync = %+v, %v; want nothing", c, err)
	}
	if got := f.invoker.seen(); len(got) != 0 {
		t.Errorf("delegates ran %q", got)
	}
}

// TestSyncTakesTheContainersLock: a hot-plug waits for the runtime's verb
// of the same container; given up, it is code 11 and changes nothing.
func TestSyncTakesTheContainersLock(t *testing.T) {
	f := newSyncFixture(t, "blue")
	f.attacher.Locks = lock.Dir(t.TempDir())
	held, err := f.attacher.Locks.Lock(context.Background(), "c1")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Unlock()
	f.pod.Annotations[nadv1.NetworkAttachmentAnnot] = "blue, green"
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err = f.attacher.Sync(ctx, f.req)
	testutil.WantCNIError(t, err, types.ErrTryAgainLater, "c1")
	if got := f.invoker.seen(); len(got) != 0 {
		t.Errorf("delegates ran %q while the runtime held the container", got)
	}
}

// TestSyncRemovedThenAddFails: a change that removes one network and adds
// another whose delegate fails leaves the removal done and the addition
// undone, and network-status says exactly that: what is left, with the
// removal's event.
func TestSyncRemovedThenAddFails(t *testing.T) {
	f := newSyncFixture(t, "blue")
	f.invoker.fail["ADD green"] = delegateError("bridge", types.ErrInternal, "no master")
	f.pod.Annotations[nadv1.NetworkAttachmentAnnot] = "green"
	_, err := f.attacher.Sync(context.Background(), f.req)
	testutil.WantCNIError(t, err, types.ErrInternal, "ns1/green")
	if got, want := f.invoker.seen("ADD", "DEL"), []string{"DEL blue net1", "ADD green net1", "DEL green net1"}; !slices.Equal(got, want) {
		t.Errorf("delegates ran %q, want %q", got, want)
	}
	if got, want := f.journaledNames(t), []string{"eth0=cluster"}; !slices.Equal(got, want) {
		t.Errorf("journal %q, want %q", got, want)
	}
	if len(f.recorder.records) != 1 || len(f.recorder.records[0].statuses) != 1 || f.recorder.records[0].statuses[0].Interface != "eth0" {
		t.Errorf("network-status written %s, want eth0 alone", testutil.JSON(t, f.recorder.records))
	}
	if got, want := f.eventsOf("Normal"), []string{"RemovedInterface: Remove net1 from ns1/blue"}; !slices.Equal(got, want) {
		t.Errorf("events %q, want %q", got, want)
	}
}

// TestSyncRefusesHostileNetworks: what a namespace user can put in the
// annotation of a running pod is refused as at ADD, with code 7 and an
// event: braid itself as the network (with its own binDir and logFile), a
// network of another namespace under isolation, more networks than a pod
// may have. No delegate runs and the journal stays as it was.
func TestSyncRefusesHostileNetworks(t *testing.T) {
	tests := []struct {
		name     string
		networks string
		setup    func(f *syncFixture)
		wantMsg  string
	}{
		{name: "braid as the network", networks: "blue, evil", setup: func(f *syncFixture) {
			f.api.nads["ns1/evil"] = &nadv1.NetworkAttachmentDefinition{ObjectMeta: metav1.ObjectMeta{Namespace: "ns1", Name: "evil"},
				Spec: nadv1.NetworkAttachmentDefinitionSpec{Config: `{"cniVersion":"1.0.0","name":"evil","type":"braid","binDir":"/tmp/attacker","logFile":"/tmp/attacker/log"}`}}
		}, wantMsg: "braid"},
		{name: "another namespace under isolation", networks: "blue, other/green", setup: func(f *syncFixture) {
			f.attacher.Builder.Conf.NamespaceIsolation = true
		}, wantMsg: "namespace isolation"},
		{name: "more networks than a pod may have", networks: strings.TrimSuffix(strings.Repeat("blue,", 40), ","), wantMsg: "maxNetworksPerPod"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newSyncFixture(t, "blue")
			before := testutil.JSON(t, f.journaled(t, "c1"))
			if tt.setup != nil {
				tt.setup(f)
			}
			f.pod.Annotations[nadv1.NetworkAttachmentAnnot] = tt.networks
			_, err := f.attacher.Sync(context.Background(), f.req)
			testutil.WantCNIError(t, err, types.ErrInvalidNetworkConfig, tt.wantMsg)
			if got := f.invoker.seen(); len(got) != 0 {
				t.Errorf("delegates ran %q", got)
			}
			if after := testutil.JSON(t, f.journaled(t, "c1")); after != before {
				t.Errorf("journal changed:\n%s\nwas\n%s", after, before)
			}
			if w := f.eventsOf("Warning"); len(w) != 1 || !strings.HasPrefix(w[0], ReasonInvalidNetworks) {
				t.Errorf("warnings %q, want one InvalidNetworks", w)
			}
		})
	}
}

// listedDevices is a devices.Lister with a fixed allocation.
type listedDevices []devices.Device

func (l listedDevices) Devices(context.Context, *corev1.Pod) ([]devices.Device, error) { return l, nil }

// TestSyncDeviceBacked: a device-backed network added to a running pod gets
// the device no attachment uses, its delegate finds the device-info at
// CNIDeviceInfoFile, the claim learns the interface it became (the new
// attachment's only), and removing it deletes the device-info copy.
func TestSyncDeviceBacked(t *testing.T) {
	f := newSyncFixture(t, "blue")
	f.api.nads["ns1/green"].Annotations = map[string]string{devices.ResourceNameKey: "example.com/vf"}
	dir := devices.InfoDir(t.TempDir())
	for _, id := range []string{"0000:3b:02.1", "0000:3b:02.2"} {
		file := dir.PluginFile("example.com/vf", id)
		if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, []byte(`{"type":"pci","version":"1.1.0","pci":{"pci-address":"`+id+`"}}`), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	claim := func(dev string) *devices.ClaimDevice {
		return &devices.ClaimDevice{Namespace: "ns1", Name: "vfs", Driver: "braid.test", Pool: "node1", Device: dev}
	}
	f.attacher.Builder.Devices = listedDevices{
		{Resource: "example.com/vf", ID: "0000:3b:02.1", Claim: claim("vf1")},
		{Resource: "example.com/vf", ID: "0000:3b:02.2", Claim: claim("vf2")},
	}
	f.attacher.Builder.DeviceInfo = dir
	claims := &fakeClaims{}
	f.attacher.Claims = claims
	// A journaled attachment (the blue one, say, moved a VF in at ADD)
	// holds the first device: hot-plug must not hand it out again.
	p := f.journaled(t, "c1")
	p.Attachments[1].Device = &plan.Device{Device: devices.Device{Resource: "example.com/vf", ID: "0000:3b:02.1", Claim: claim("vf1")}}
	if err := f.attacher.save(p); err != nil {
		t.Fatal(err)
	}
	infoFile := dir.CNIFile("ns1/green", "c1", "net2")
	var seen string
	f.invoker.onAdd = map[string]func(){greenName: func() { data, _ := os.ReadFile(infoFile); seen = string(data) }}

	f.pod.Annotations[nadv1.NetworkAttachmentAnnot] = "blue, green"
	if _, err := f.attacher.Sync(context.Background(), f.req); err != nil {
		t.Fatal(err)
	}
	if got := f.journaled(t, "c1").Attachments[2].Device; got == nil || got.ID != "0000:3b:02.2" || got.InfoFile != infoFile {
		t.Fatalf("net2's device %+v, want 0000:3b:02.2 with device-info %s", got, infoFile)
	}
	if !strings.Contains(seen, "0000:3b:02.2") {
		t.Errorf("the delegate found %q at CNIDeviceInfoFile, want the device plugin's file of 0000:3b:02.2", seen)
	}
	if got, want := slices.Sorted(maps.Keys(claims.written)), []string{"ns1/vfs/vf2"}; !slices.Equal(got, want) || claims.written["ns1/vfs/vf2"].Network.InterfaceName != "net2" {
		t.Errorf("claims written %+v, want only vf2's, as net2", claims.written)
	}

	f.pod.Annotations[nadv1.NetworkAttachmentAnnot] = "blue"
	if _, err := f.attacher.Sync(context.Background(), f.req); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(infoFile); !os.IsNotExist(err) {
		t.Errorf("device-info %s after net2 was removed: %v, want it gone", infoFile, err)
	}
	if st := claims.written["ns1/vfs/vf2"]; st.Ready || st.Network != nil || st.Reason != devices.ReasonRemoved {
		t.Errorf("vf2's claim after net2 was removed: %+v, want not ready, removed, no network data", st)
	}
}

// TestSyncReplugs: the pod asks for a kept network with other parameters
// (here its IPs): the attachment is deleted and made again under its
// name, with one event for each.
func TestSyncReplugs(t *testing.T) {
	f := newSyncFixture(t, `[{"name":"blue","ips":["10.1.1.5/24"]}, {"name":"green"}]`)
	f.pod.Annotations[nadv1.NetworkAttachmentAnnot] = `[{"name":"blue","ips":["10.1.1.6/24"]}, {"name":"green"}]`
	if _, err := f.attacher.Sync(context.Background(), f.req); err != nil {
		t.Fatal(err)
	}
	if got, want := f.invoker.seen("ADD", "DEL"), []string{"DEL blue net1", "ADD blue net1"}; !slices.Equal(got, want) {
		t.Errorf("delegates ran %q, want %q", got, want)
	}
	p := f.journaled(t, "c1")
	if got, want := f.journaledNames(t), []string{"eth0=cluster", "net1=ns1/blue", "net2=ns1/green"}; !slices.Equal(got, want) {
		t.Errorf("journal %q, want %q", got, want)
	}
	if ips := p.Attachments[1].CapabilityArgs["ips"]; fmt.Sprint(ips) != "[10.1.1.6/24]" {
		t.Errorf("net1 journaled with ips %v, want the new ones", ips)
	}
	if got, want := f.eventsOf("Normal"), []string{"AddedInterface: Add net1 [10.1.1.5/24] from ns1/blue", "RemovedInterface: Remove net1 from ns1/blue"}; !slices.Equal(got, want) {
		t.Errorf("events %q, want %q", got, want)
	}
}
