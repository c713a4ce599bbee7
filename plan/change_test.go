package plan_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	corev1 "k8s.io/api/core/v1"

	"github.com/braid-cni/braid/annotations"
	"github.com/braid-cni/braid/internal/testutil"
	"github.com/braid-cni/braid/nad"
	"github.com/braid-cni/braid/netconf"
	"github.com/braid-cni/braid/plan"
)

// hotplugBuilder builds plans for pod ns/p (uid-1) from the fixture NADs;
// extra are more keys of braid's config.
func hotplugBuilder(t *testing.T, pods *mapPods, extra string) *plan.Builder {
	t.Helper()
	cluster := filepath.Join(t.TempDir(), "cluster.conflist")
	if err := os.WriteFile(cluster, []byte(clusterList), 0o600); err != nil {
		t.Fatal(err)
	}
	nc, err := netconf.Parse(fmt.Appendf(nil, `{"cniVersion":"1.0.0","name":"braid","type":"braid","clusterNetwork":%q%s}`, cluster, extra))
	if err != nil {
		t.Fatal(err)
	}
	return &plan.Builder{Conf: nc, Pods: pods, Resolver: &nad.Resolver{NADs: fixtureNADs(), ConfDir: nc.ConfDir}, Log: slog.New(slog.DiscardHandler)}
}

// ifNames lists "ifname=network" of attachments.
func ifNames(atts []plan.Attachment) []string {
	out := make([]string, len(atts))
	for i, a := range atts {
		out[i] = a.IfName + "=" + a.Network
	}
	return out
}

// TestReplan: the change a new networks annotation asks of a running
// container's plan, built from the old annotation as ADD built it.
func TestReplan(t *testing.T) {
	tests := []struct {
		name          string
		conf          string // extra config keys
		before, after string // the networks annotation at ADD, and now
		wantNext      []string
		wantAdded     []string // ifname=network of Next.Attachments[Added[i]]
		wantRemoved   []string
	}{
		{
			name: "nothing changed", before: "a, b", after: "ns/a,ns/b",
			wantNext: []string{"eth0=cluster-net", "net1=ns/a", "net2=ns/b"},
		},
		{
			name: "one added, unnamed: the next free netN", before: "a", after: "a, b",
			wantNext:  []string{"eth0=cluster-net", "net1=ns/a", "net2=ns/b"},
			wantAdded: []string{"net2=ns/b"},
		},
		{
			name: "the first removed: the second keeps net2", before: "a, b", after: "b",
			wantNext:    []string{"eth0=cluster-net", "net2=ns/b"},
			wantRemoved: []string{"net1=ns/a"},
		},
		{
			name: "a new unnamed one takes the lowest free netN", before: "a, b", after: "b, c",
			wantNext:    []string{"eth0=cluster-net", "net2=ns/b", "net1=ns/c"},
			wantAdded:   []string{"net1=ns/c"},
			wantRemoved: []string{"net1=ns/a"},
		},
		{
			name: "duplicates of one network match in order", before: "a, a, b", after: "a, b",
			wantNext:    []string{"eth0=cluster-net", "net1=ns/a", "net3=ns/b"},
			wantRemoved: []string{"net2=ns/a"},
		},
		{
			name: "named: matched by network and interface", before: "a@ext0, b", after: "b, a@ext1",
			wantNext:    []string{"eth0=cluster-net", "net2=ns/b", "ext1=ns/a"},
			wantAdded:   []string{"ext1=ns/a"},
			wantRemoved: []string{"ext0=ns/a"},
		},
		{
			name: "an unnamed selection never takes an interface another one names", before: "a, a", after: "a, a@net1",
			wantNext: []string{"eth0=cluster-net", "net2=ns/a", "net1=ns/a"},
		},
		{
			name: "a named one takes over the name of one removed", before: "a, b", after: "c@net1, b",
			wantNext:    []string{"eth0=cluster-net", "net1=ns/c", "net2=ns/b"},
			wantAdded:   []string{"net1=ns/c"},
			wantRemoved: []string{"net1=ns/a"},
		},
		{
			name: "present since creation: unplugged like any other", before: "a", after: "",
			wantNext:    []string{"eth0=cluster-net"},
			wantRemoved: []string{"net1=ns/a"},
		},
		{
			name: "other parameters: made again under its name", before: `[{"name":"a","ips":["10.1.0.5/24"]}, {"name":"b"}]`, after: `[{"name":"a","ips":["10.1.0.6/24"]}, {"name":"b"}]`,
			wantNext:    []string{"eth0=cluster-net", "net1=ns/a", "net2=ns/b"},
			wantAdded:   []string{"net1=ns/a"},
			wantRemoved: []string{"net1=ns/a"},
		},
		{
			name: "cni-args changed", before: `[{"name":"a","cni-args":{"vlan":"10"}}]`, after: `[{"name":"a","cni-args":{"vlan":"20"}}]`,
			wantNext:    []string{"eth0=cluster-net", "net1=ns/a"},
			wantAdded:   []string{"net1=ns/a"},
			wantRemoved: []string{"net1=ns/a"},
		},
		{
			name: "a named one with a new MAC keeps its name", before: "b, a@ext0", after: `[{"name":"b"}, {"name":"a","interface":"ext0","mac":"0a:00:00:00:00:01"}]`,
			wantNext:    []string{"eth0=cluster-net", "net1=ns/b", "ext0=ns/a"},
			wantAdded:   []string{"ext0=ns/a"},
			wantRemoved: []string{"ext0=ns/a"},
		},
		{
			name: "the same parameters in another form: kept", before: `[{"name":"a","namespace":"ns","cni-args":{"y":"1","x":"2"}}]`, after: `[{"cni-args":{"x":"2","y":"1"},"name":"a"}]`,
			wantNext: []string{"eth0=cluster-net", "net1=ns/a"},
		},
		{
			name: "defaultNetworks are never touched", conf: `,"defaultNetworks":["dflt"]`, before: "a", after: "b",
			wantNext:    []string{"eth0=cluster-net", "net1=kube-system/dflt", "net2=ns/b"},
			wantAdded:   []string{"net2=ns/b"},
			wantRemoved: []string{"net2=ns/a"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := newPod("ns", "p", "uid-1", map[string]string{annotations.NetworksKey: tt.before})
			pods := &mapPods{pods: map[string]*corev1.Pod{"ns/p": pod}}
			b := hotplugBuilder(t, pods, tt.conf)
			prev, err := b.Build(context.Background(), plan.Request{ContainerID: "c1", NetNS: "/var/run/netns/c1", IfName: "eth0", Pod: plan.PodRef{Namespace: "ns", Name: "p", UID: "uid-1"}})
			if err != nil {
				t.Fatal(err)
			}
			// What ADD journals: each attachment with its result.
			for i := range prev.Attachments {
				prev.Attachments[i].Result = json.RawMessage(fmt.Sprintf(`{"cniVersion":"1.0.0","interfaces":[{"name":%q}]}`, prev.Attachments[i].IfName))
			}
			before := testutil.JSON(t, prev)
			pod.Annotations[annotations.NetworksKey] = tt.after

			c, err := b.Replan(context.Background(), prev)
			if err != nil {
				t.Fatal(err)
			}
			if got := ifNames(c.Next.Attachments); !slices.Equal(got, tt.wantNext) {
				t.Errorf("next = %q, want %q", got, tt.wantNext)
			}
			var added []string
			for _, i := range c.Added {
				added = append(added, ifNames(c.Next.Attachments[i : i+1])[0])
			}
			if !slices.Equal(added, tt.wantAdded) {
				t.Errorf("added = %q, want %q", added, tt.wantAdded)
			}
			if got := ifNames(c.Removed); !slices.Equal(got, tt.wantRemoved) && (len(got) > 0 || len(tt.wantRemoved) > 0) {
				t.Errorf("removed = %q, want %q", got, tt.wantRemoved)
			}
			if c.Empty() != (len(tt.wantAdded) == 0 && len(tt.wantRemoved) == 0) {
				t.Errorf("Empty() = %v", c.Empty())
			}
			if after := testutil.JSON(t, prev); after != before {
				t.Errorf("Replan changed the journaled plan:\n%s\nwas\n%s", after, before)
			}
			// Kept attachments stay exactly as journaled; new ones have no
			// result yet and are marked as the annotation's.
			for i, a := range c.Next.Attachments {
				isNew := slices.Contains(c.Added, i)
				if isNew {
					if len(a.Result) != 0 || !a.Selected {
						t.Errorf("new attachment %s: result %s, selected %v", a.IfName, a.Result, a.Selected)
					}
					continue
				}
				j := slices.IndexFunc(prev.Attachments, func(p plan.Attachment) bool { return p.IfName == a.IfName && p.Network == a.Network })
				if j < 0 || !reflect.DeepEqual(prev.Attachments[j], a) {
					t.Errorf("kept attachment %s=%s differs from the journaled one", a.IfName, a.Network)
				}
			}
			if c.Next.ContainerID != "c1" || c.Next.NetNS != "/var/run/netns/c1" || !c.Next.Pluggable {
				t.Errorf("next plan %+v lost the container's identity", c.Next)
			}
		})
	}
}

// TestReplanUnknownParameters: an attachment journaled before braid
// recorded what its selection asked is kept whatever the pod asks of it
// now: braid cannot tell a change from the same request.
func TestReplanUnknownParameters(t *testing.T) {
	pod := newPod("ns", "p", "uid-1", map[string]string{annotations.NetworksKey: "a"})
	b := hotplugBuilder(t, &mapPods{pods: map[string]*corev1.Pod{"ns/p": pod}}, "")
	prev, err := b.Build(context.Background(), plan.Request{ContainerID: "c1", IfName: "eth0", Pod: plan.PodRef{Namespace: "ns", Name: "p", UID: "uid-1"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(prev.Attachments[1].Parameters); got != "{}" {
		t.Errorf("parameters of a bare selection %q, want {}", got)
	}
	prev.Attachments[1].Parameters = nil
	pod.Annotations[annotations.NetworksKey] = `[{"name":"a","ips":["10.1.0.6/24"]}]`
	c, err := b.Replan(context.Background(), prev)
	if err != nil || !c.Empty() {
		t.Errorf("Replan = %+v, %v; want no change", c, err)
	}
}

// TestReplanRefuses: what the new annotation gets wrong is code 7, what is
// not there yet code 11, and a plan journaled before the annotation's
// networks were marked cannot be changed.
func TestReplanRefuses(t *testing.T) {
	tests := []struct {
		name    string
		conf    string
		after   string
		prev    func(p *plan.Plan)
		code    uint
		wantMsg []string
	}{
		{name: "bad annotation", after: "a@", code: types.ErrInvalidNetworkConfig, wantMsg: []string{"annotation"}},
		{name: "a NAD not there yet", after: "a, nope", code: types.ErrTryAgainLater, wantMsg: []string{"nope"}},
		{name: "the name of a default network", conf: `,"defaultNetworks":["dflt"]`, after: "a, b@net1", code: types.ErrInvalidNetworkConfig, wantMsg: []string{"net1", "kube-system/dflt"}},
		{name: "two default routes", after: `[{"name":"a","default-route":["10.0.0.1"]},{"name":"b","default-route":["10.0.1.1"]}]`, code: types.ErrInvalidNetworkConfig, wantMsg: []string{"default route"}},
		{name: "too many", conf: `,"maxNetworksPerPod":2`, after: "a, b, c", code: types.ErrInvalidNetworkConfig, wantMsg: []string{"maxNetworksPerPod"}},
		{name: "journaled before the mark", after: "a, b", prev: func(p *plan.Plan) { p.Pluggable = false }, code: types.ErrInvalidNetworkConfig, wantMsg: []string{"c1", "recreate the pod"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := newPod("ns", "p", "uid-1", map[string]string{annotations.NetworksKey: "a"})
			pods := &mapPods{pods: map[string]*corev1.Pod{"ns/p": pod}}
			b := hotplugBuilder(t, pods, tt.conf)
			prev, err := b.Build(context.Background(), plan.Request{ContainerID: "c1", IfName: "eth0", Pod: plan.PodRef{Namespace: "ns", Name: "p", UID: "uid-1"}})
			if err != nil {
				t.Fatal(err)
			}
			if tt.prev != nil {
				tt.prev(prev)
			}
			pod.Annotations[annotations.NetworksKey] = tt.after
			c, err := b.Replan(context.Background(), prev)
			if c != nil {
				t.Errorf("Replan returned a change %+v with its error", c)
			}
			testutil.WantCNIError(t, err, tt.code, tt.wantMsg...)
		})
	}
}

// TestReplanPodGone: a pod deleted asks for no change, one recreated under
// its name is code 11: either way the runtime's DEL is coming.
func TestReplanPodGone(t *testing.T) {
	pod := newPod("ns", "p", "uid-1", map[string]string{annotations.NetworksKey: "a"})
	pods := &mapPods{pods: map[string]*corev1.Pod{"ns/p": pod}}
	b := hotplugBuilder(t, pods, "")
	prev, err := b.Build(context.Background(), plan.Request{ContainerID: "c1", IfName: "eth0", Pod: plan.PodRef{Namespace: "ns", Name: "p", UID: "uid-1"}})
	if err != nil {
		t.Fatal(err)
	}
	delete(pods.pods, "ns/p")
	c, err := b.Replan(context.Background(), prev)
	if err != nil || !c.Empty() || c.Next != prev {
		t.Errorf("pod deleted: Replan = %+v, %v; want no change", c, err)
	}
	pods.pods["ns/p"] = newPod("ns", "p", "uid-2", map[string]string{annotations.NetworksKey: "b"})
	c, err = b.Replan(context.Background(), prev)
	var te *types.Error
	if c != nil || !errors.As(err, &te) || te.Code != types.ErrTryAgainLater {
		t.Errorf("pod recreated: Replan = %+v, %v; want code 11", c, err)
	}
}
