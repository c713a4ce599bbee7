package plan_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	k8stypes "k8s.io/apimachinery/pkg/types"

	"github.com/braid-cni/braid/annotations"
	"github.com/braid-cni/braid/gateway"
	"github.com/braid-cni/braid/internal/testutil"
	"github.com/braid-cni/braid/nad"
	"github.com/braid-cni/braid/netconf"
	"github.com/braid-cni/braid/plan"
)

// mapPods is a PodGetter backed by a map keyed "namespace/name". err, when
// set, is what the API server answers instead.
type mapPods struct {
	pods map[string]*corev1.Pod
	err  error
}

func (m *mapPods) GetPod(_ context.Context, namespace, name string) (*corev1.Pod, error) {
	if m.err != nil {
		return nil, m.err
	}
	if p, ok := m.pods[namespace+"/"+name]; ok {
		return p, nil
	}
	return nil, apierrors.NewNotFound(corev1.Resource("pods"), name)
}

// mapNADs is a nad.Getter backed by a map keyed "namespace/name".
type mapNADs map[string]*nadv1.NetworkAttachmentDefinition

func (m mapNADs) GetNAD(_ context.Context, namespace, name string) (*nadv1.NetworkAttachmentDefinition, error) {
	if n, ok := m[namespace+"/"+name]; ok {
		return n, nil
	}
	gr := schema.GroupResource{Group: "k8s.cni.cncf.io", Resource: "network-attachment-definitions"}
	return nil, apierrors.NewNotFound(gr, name)
}

var (
	_ plan.PodGetter = (*mapPods)(nil)
	_ nad.Getter     = mapNADs(nil)
)

const (
	clusterList = `{"cniVersion":"1.0.0","name":"cluster-net","plugins":[{"type":"ptp"},{"type":"portmap","capabilities":{"portMappings":true}}]}`
	fileDefault = `{"cniVersion":"1.0.0","name":"file-default","type":"macvlan","master":"eth9"}`
	confA       = `{"cniVersion":"1.0.0","name":"net-a","type":"bridge","bridge":"br-a","capabilities":{"ips":true,"mac":true}}`
	// confB is a conflist whose first plugin already has args.cni.
	confB = `{"cniVersion":"1.0.0","name":"net-b","plugins":[{"type":"bridge","args":{"cni":{"keep":"yes"}}},{"type":"tuning"}]}`
	confC = `{"cniVersion":"1.0.0","name":"net-c","type":"ipvlan","master":"eth1"}`
	confX = `{"cniVersion":"1.0.0","name":"net-x","type":"vlan","master":"eth1","vlanId":10}`
	confD = `{"cniVersion":"1.0.0","name":"net-d","type":"host-device","device":"eth5"}`
	confK = `{"cniVersion":"1.0.0","name":"net-k","type":"bridge","bridge":"br-k"}`
)

func newNAD(namespace, name, config string) *nadv1.NetworkAttachmentDefinition {
	return &nadv1.NetworkAttachmentDefinition{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec:       nadv1.NetworkAttachmentDefinitionSpec{Config: config},
	}
}

func fixtureNADs() mapNADs {
	m := mapNADs{}
	for _, n := range []*nadv1.NetworkAttachmentDefinition{
		newNAD("ns", "a", confA),
		newNAD("ns", "b", confB),
		newNAD("ns", "c", confC),
		newNAD("other", "x", confX),
		newNAD("default", "d", confD),
		newNAD("kube-system", "dflt", confK),
		newNAD("kube-system", "a", confK),
		newNAD("ns", "broken", `{"cniVersion":"1.0.0","name":"broken"}`),
	} {
		m[n.Namespace+"/"+n.Name] = n
	}
	return m
}

func newPod(namespace, name, uid string, annots map[string]string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{
		Namespace: namespace, Name: name, UID: k8stypes.UID(uid), Annotations: annots,
	}}
}

// want is the part of an attachment every case checks.
type want struct {
	ifName  string
	network string
	cluster bool
}

func TestBuild(t *testing.T) {
	confDir := t.TempDir()
	for name, content := range map[string]string{
		"00-cluster.conflist":  clusterList,
		"10-file-default.conf": fileDefault,
	} {
		if err := os.WriteFile(filepath.Join(confDir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	conf := func(extra string) string {
		if extra == "" {
			extra = `"clusterNetwork":"cluster-net"`
		}
		return fmt.Sprintf(`{"cniVersion":"1.0.0","name":"braid","type":"braid","confDir":%q,%s}`, confDir, extra)
	}
	networks := func(v string) map[string]string { return map[string]string{annotations.NetworksKey: v} }
	podRef := plan.PodRef{Namespace: "ns", Name: "p", UID: "uid-1"}

	jsonForm := `[
		{"name":"a","interface":"ext0","ips":["10.1.1.5/24","fd00::5/64"],"mac":"02:00:00:00:00:01",
		 "default-route":["10.1.1.1"],
		 "portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"tcp"}],
		 "bandwidth":{"ingressRate":1000,"ingressBurst":2000,"egressRate":3000,"egressBurst":4000},
		 "infiniband-guid":"00:11:22:33:44:55:66:77","deviceID":"0000:03:00.1",
		 "cni-args":{"foo":"bar","n":5}},
		{"name":"b","cni-args":{"k":"v"}}
	]`

	tests := []struct {
		name string
		conf string // extra keys of braid's config; default clusterNetwork only
		pod  *corev1.Pod
		// podErr is what the pod getter answers with.
		podErr error
		// noPods builds the plan without a pod getter.
		noPods  bool
		ref     *plan.PodRef // default podRef
		want    []want
		check   func(t *testing.T, p *plan.Plan)
		code    uint
		wantMsg []string
	}{
		{
			name: "no pod args: cluster network only",
			pod:  newPod("ns", "p", "uid-1", networks("a")),
			ref:  &plan.PodRef{},
			want: []want{{"eth0", "cluster-net", true}},
			check: func(t *testing.T, p *plan.Plan) {
				if got := testutil.Compact(t, p.Attachments[0].Config); got != clusterList {
					t.Errorf("cluster Config %s, want the file's bytes %s", got, clusterList)
				}
				if !reflect.DeepEqual(p.Attachments[0].CapabilityArgs, map[string]any{"portMappings": []any{"runtime"}}) {
					t.Errorf("cluster CapabilityArgs %#v, want the runtime's", p.Attachments[0].CapabilityArgs)
				}
			},
		},
		{
			name:   "no API access: cluster network only",
			pod:    newPod("ns", "p", "uid-1", networks("a")),
			noPods: true,
			want:   []want{{"eth0", "cluster-net", true}},
		},
		{
			name: "pod not found: cluster network only",
			want: []want{{"eth0", "cluster-net", true}},
		},
		{
			name:    "pod getter API error",
			podErr:  errors.New("the server is currently unable to handle the request"),
			code:    types.ErrTryAgainLater,
			wantMsg: []string{"ns/p", "unable to handle the request"},
		},
		{
			name:    "UID mismatch",
			pod:     newPod("ns", "p", "uid-2", networks("a")),
			code:    types.ErrTryAgainLater,
			wantMsg: []string{"ns/p", "uid-1", "uid-2"},
		},
		{
			name: "pod without annotation",
			pod:  newPod("ns", "p", "uid-1", nil),
			want: []want{{"eth0", "cluster-net", true}},
		},
		{
			name: "short form with two networks",
			pod:  newPod("ns", "p", "uid-1", networks("a, other/x")),
			want: []want{{"eth0", "cluster-net", true}, {"net1", "ns/a", false}, {"net2", "other/x", false}},
			check: func(t *testing.T, p *plan.Plan) {
				if got := testutil.Compact(t, p.Attachments[1].Config); got != confA {
					t.Errorf("ns/a Config %s, want the NAD's %s", got, confA)
				}
				for _, a := range p.Attachments[1:] {
					if a.CapabilityArgs != nil || a.DefaultRoute != nil {
						t.Errorf("%s: CapabilityArgs %v DefaultRoute %v, want none", a.IfName, a.CapabilityArgs, a.DefaultRoute)
					}
				}
				if p.DefaultRoutes != nil {
					t.Errorf("DefaultRoutes %+v, want none", p.DefaultRoutes)
				}
			},
		},
		{
			name: "short form with interface names",
			pod:  newPod("ns", "p", "uid-1", networks("a@data0,c,other/x@net1")),
			want: []want{{"eth0", "cluster-net", true}, {"data0", "ns/a", false}, {"net2", "ns/c", false}, {"net1", "other/x", false}},
		},
		{
			name:  "JSON form with every request",
			pod:   newPod("ns", "p", "uid-1", networks(jsonForm)),
			want:  []want{{"eth0", "cluster-net", true}, {"ext0", "ns/a", false}, {"net2", "ns/b", false}},
			check: checkJSONForm,
		},
		{
			name:    "explicit net2 collides with a generated name",
			pod:     newPod("ns", "p", "uid-1", networks(`[{"name":"a","interface":"net2"},{"name":"c"}]`)),
			code:    types.ErrInvalidNetworkConfig,
			wantMsg: []string{"net2", "ns/a@net2"},
		},
		{
			name:    "annotation that does not parse",
			pod:     newPod("ns", "p", "uid-1", networks(`[{"name":"a"},{"name":5}]`)),
			code:    types.ErrInvalidNetworkConfig,
			wantMsg: []string{"ns/p", annotations.NetworksKey, "element 2", "`{\"name\":5}`"},
		},
		{
			name:    "annotation that does not validate",
			pod:     newPod("ns", "p", "uid-1", networks("a@lo")),
			code:    types.ErrInvalidNetworkConfig,
			wantMsg: []string{"ns/p", annotations.NetworksKey, `"ns/a@lo"`, "reserved"},
		},
		{
			name:    "annotation asks for the runtime's interface",
			pod:     newPod("ns", "p", "uid-1", networks("a@eth0")),
			code:    types.ErrInvalidNetworkConfig,
			wantMsg: []string{`"ns/a@eth0"`, "CNI_IFNAME"},
		},
		{
			name:    "missing NAD",
			pod:     newPod("ns", "p", "uid-1", networks("a,missing")),
			code:    types.ErrTryAgainLater,
			wantMsg: []string{"ns/missing"},
		},
		{
			name:    "annotation networks are not looked up in confDir",
			pod:     newPod("ns", "p", "uid-1", networks("file-default")),
			code:    types.ErrTryAgainLater,
			wantMsg: []string{"ns/file-default", "not found"},
		},
		{
			name:    "NAD whose config is not runnable",
			pod:     newPod("ns", "p", "uid-1", networks("broken")),
			code:    types.ErrInvalidNetworkConfig,
			wantMsg: []string{"ns/broken", "net1"},
		},
		{
			name: "default-network replaces the cluster network",
			pod: newPod("ns", "p", "uid-1", map[string]string{
				annotations.DefaultNetworkKey: "dflt",
				annotations.NetworksKey:       "a",
			}),
			want: []want{{"eth0", "kube-system/dflt", true}, {"net1", "ns/a", false}},
			check: func(t *testing.T, p *plan.Plan) {
				if got := testutil.Compact(t, p.Attachments[0].Config); got != confK {
					t.Errorf("cluster Config %s, want %s", got, confK)
				}
			},
		},
		{
			name: "default-network namespace defaults to multusNamespace",
			conf: `"clusterNetwork":"cluster-net","multusNamespace":"ns"`,
			pod:  newPod("ns", "p", "uid-1", map[string]string{annotations.DefaultNetworkKey: "c"}),
			want: []want{{"eth0", "ns/c", true}},
		},
		{
			name: "default-network with namespace",
			pod:  newPod("ns", "p", "uid-1", map[string]string{annotations.DefaultNetworkKey: "other/x"}),
			want: []want{{"eth0", "other/x", true}},
		},
		{
			name:    "default-network NAD missing",
			pod:     newPod("ns", "p", "uid-1", map[string]string{annotations.DefaultNetworkKey: "nope"}),
			code:    types.ErrTryAgainLater,
			wantMsg: []string{"kube-system/nope"},
		},
		{
			name:    "default-network is not looked up in confDir",
			pod:     newPod("ns", "p", "uid-1", map[string]string{annotations.DefaultNetworkKey: "file-default"}),
			code:    types.ErrTryAgainLater,
			wantMsg: []string{"kube-system/file-default", "not found"},
		},
		{
			name:    "default-network that does not parse",
			pod:     newPod("ns", "p", "uid-1", map[string]string{annotations.DefaultNetworkKey: "a,b"}),
			code:    types.ErrInvalidNetworkConfig,
			wantMsg: []string{"ns/p", annotations.DefaultNetworkKey},
		},
		{
			name: "defaultNetworks come before the annotation's networks",
			conf: `"clusterNetwork":"cluster-net","defaultNetworks":["dflt","file-default"]`,
			pod:  newPod("ns", "p", "uid-1", networks("a")),
			want: []want{{"eth0", "cluster-net", true}, {"net1", "kube-system/dflt", false}, {"net2", "file-default", false}, {"net3", "ns/a", false}},
			check: func(t *testing.T, p *plan.Plan) {
				if got := testutil.Compact(t, p.Attachments[2].Config); got != fileDefault {
					t.Errorf("file-default Config %s, want the file's %s", got, fileDefault)
				}
			},
		},
		{
			name: "defaultNetworks skipped in system namespaces",
			conf: `"clusterNetwork":"cluster-net","defaultNetworks":["dflt"],"systemNamespaces":["ns"]`,
			pod:  newPod("ns", "p", "uid-1", networks("a")),
			want: []want{{"eth0", "cluster-net", true}, {"net1", "ns/a", false}},
		},
		{
			name: "defaultNetworks skipped by a pod that asks",
			conf: `"clusterNetwork":"cluster-net","defaultNetworks":["dflt"]`,
			pod:  newPod("ns", "p", "uid-1", map[string]string{annotations.NetworksKey: "a", annotations.SkipDefaultNetworksKey: "true"}),
			want: []want{{"eth0", "cluster-net", true}, {"net1", "ns/a", false}},
		},
		{
			name: "defaultNetworks kept when the pod says false",
			conf: `"clusterNetwork":"cluster-net","defaultNetworks":["dflt"]`,
			pod:  newPod("ns", "p", "uid-1", map[string]string{annotations.NetworksKey: "a", annotations.SkipDefaultNetworksKey: "false"}),
			want: []want{{"eth0", "cluster-net", true}, {"net1", "kube-system/dflt", false}, {"net2", "ns/a", false}},
		},
		{
			name:    "skip-default-networks neither true nor false",
			conf:    `"clusterNetwork":"cluster-net","defaultNetworks":["dflt"]`,
			pod:     newPod("ns", "p", "uid-1", map[string]string{annotations.SkipDefaultNetworksKey: "yes"}),
			code:    types.ErrInvalidNetworkConfig,
			wantMsg: []string{"ns/p", annotations.SkipDefaultNetworksKey, `"yes"`},
		},
		{
			name:    "defaultNetworks interface clash with the annotation",
			conf:    `"clusterNetwork":"cluster-net","defaultNetworks":["dflt"]`,
			pod:     newPod("ns", "p", "uid-1", networks("a@net1")),
			code:    types.ErrInvalidNetworkConfig,
			wantMsg: []string{"net1"},
		},
		{
			name:    "namespace isolation refuses another namespace",
			conf:    `"clusterNetwork":"cluster-net","namespaceIsolation":true`,
			pod:     newPod("ns", "p", "uid-1", networks("a,other/x")),
			code:    types.ErrInvalidNetworkConfig,
			wantMsg: []string{"namespace isolation", "ns/p", "other/x", `"other"`, "(allowed namespaces: ns, default)"},
		},
		{
			name:    "namespace isolation lists each allowed namespace once",
			conf:    `"clusterNetwork":"cluster-net","namespaceIsolation":true,"globalNamespaces":"ns,shared"`,
			pod:     newPod("ns", "p", "uid-1", networks("other/x")),
			code:    types.ErrInvalidNetworkConfig,
			wantMsg: []string{"(allowed namespaces: ns, shared)"},
		},
		{
			name: "namespace isolation allows the pod's namespace and default",
			conf: `"clusterNetwork":"cluster-net","namespaceIsolation":true`,
			pod:  newPod("ns", "p", "uid-1", networks("a,default/d")),
			want: []want{{"eth0", "cluster-net", true}, {"net1", "ns/a", false}, {"net2", "default/d", false}},
		},
		{
			name: "globalNamespaces allow",
			conf: `"clusterNetwork":"cluster-net","namespaceIsolation":true,"globalNamespaces":"shared, other"`,
			pod:  newPod("ns", "p", "uid-1", networks("other/x")),
			want: []want{{"eth0", "cluster-net", true}, {"net1", "other/x", false}},
		},
		{
			name:    "globalNamespaces replace default",
			conf:    `"clusterNetwork":"cluster-net","namespaceIsolation":true,"globalNamespaces":"other"`,
			pod:     newPod("ns", "p", "uid-1", networks("default/d")),
			code:    types.ErrInvalidNetworkConfig,
			wantMsg: []string{"default/d", "(allowed namespaces: ns, other)"},
		},
		{
			name:    "namespace isolation refuses a default-network from another namespace",
			conf:    `"clusterNetwork":"cluster-net","namespaceIsolation":true`,
			pod:     newPod("ns", "p", "uid-1", map[string]string{annotations.DefaultNetworkKey: "other/x"}),
			code:    types.ErrInvalidNetworkConfig,
			wantMsg: []string{"ns/p", "other/x"},
		},
		{
			name: "namespace isolation allows a default-network from multusNamespace",
			conf: `"clusterNetwork":"cluster-net","namespaceIsolation":true`,
			pod:  newPod("ns", "p", "uid-1", map[string]string{annotations.DefaultNetworkKey: "dflt"}),
			want: []want{{"eth0", "kube-system/dflt", true}},
		},
		{
			name: "legacy delegates: first is the cluster network",
			conf: `"delegates":[` + confC + `,` + confX + `]`,
			pod:  newPod("ns", "p", "uid-1", networks("a")),
			want: []want{{"eth0", "net-c", true}, {"net1", "net-x", false}, {"net2", "ns/a", false}},
			check: func(t *testing.T, p *plan.Plan) {
				if got := testutil.Compact(t, p.Attachments[0].Config); got != confC {
					t.Errorf("cluster Config %s, want %s", got, confC)
				}
				if got := testutil.Compact(t, p.Attachments[1].Config); got != confX {
					t.Errorf("net1 Config %s, want %s", got, confX)
				}
			},
		},
		{
			name: "legacy delegates without a pod",
			conf: `"delegates":[` + confC + `,` + confX + `]`,
			ref:  &plan.PodRef{},
			want: []want{{"eth0", "net-c", true}, {"net1", "net-x", false}},
		},
		{
			name: "clusterNetwork wins over delegates",
			conf: `"clusterNetwork":"cluster-net","delegates":[` + confC + `,` + confX + `]`,
			ref:  &plan.PodRef{},
			want: []want{{"eth0", "cluster-net", true}},
		},
		{
			name:    "legacy delegate without a name",
			conf:    `"delegates":[{"cniVersion":"1.0.0","type":"bridge"}]`,
			ref:     &plan.PodRef{},
			code:    types.ErrInvalidNetworkConfig,
			wantMsg: []string{"delegates[0]"},
		},
		{
			name:    "cluster network missing",
			conf:    `"clusterNetwork":"nowhere"`,
			ref:     &plan.PodRef{},
			code:    types.ErrTryAgainLater,
			wantMsg: []string{"nowhere"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nc, err := netconf.Parse([]byte(conf(tt.conf)))
			if err != nil {
				t.Fatalf("netconf.Parse: %v", err)
			}
			pods := &mapPods{pods: map[string]*corev1.Pod{}, err: tt.podErr}
			if tt.pod != nil {
				pods.pods[tt.pod.Namespace+"/"+tt.pod.Name] = tt.pod
			}
			b := &plan.Builder{
				Conf:     nc,
				Pods:     pods,
				Resolver: &nad.Resolver{NADs: fixtureNADs(), ConfDir: nc.ConfDir},
				Log:      slog.New(slog.NewTextHandler(io.Discard, nil)),
			}
			if tt.noPods {
				b.Pods = nil
			}
			ref := podRef
			if tt.ref != nil {
				ref = *tt.ref
			}
			req := plan.Request{
				ContainerID:   "c0ffee",
				NetNS:         "/var/run/netns/cni-1",
				IfName:        "eth0",
				Args:          [][2]string{{"K8S_POD_NAMESPACE", ref.Namespace}, {"K8S_POD_NAME", ref.Name}},
				Pod:           ref,
				RuntimeConfig: map[string]any{"portMappings": []any{"runtime"}},
			}
			p, err := b.Build(context.Background(), req)
			if tt.code != 0 {
				if p != nil {
					t.Errorf("got a plan with %d attachments along with the error", len(p.Attachments))
				}
				testutil.WantCNIError(t, err, tt.code, tt.wantMsg...)
				return
			}
			if err != nil {
				t.Fatalf("Build: %v", err)
			}
			if p.Version != plan.Version || p.ContainerID != req.ContainerID || p.NetNS != req.NetNS ||
				p.IfName != req.IfName || p.Pod != ref || !reflect.DeepEqual(p.Args, req.Args) {
				t.Errorf("plan header %+v does not match the request %+v", p, req)
			}
			got := make([]want, 0, len(p.Attachments))
			for _, a := range p.Attachments {
				got = append(got, want{a.IfName, a.Network, a.Cluster})
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("attachments\n got %+v\nwant %+v", got, tt.want)
			}
			if tt.check != nil && !t.Failed() {
				tt.check(t, p)
			}
		})
	}
}

// checkJSONForm checks the plan of the "JSON form with every request" case.
func checkJSONForm(t *testing.T, p *plan.Plan) {
	a, b := p.Attachments[1], p.Attachments[2]
	wantCaps := map[string]any{
		"ips":            []string{"10.1.1.5/24", "fd00::5/64"},
		"mac":            "02:00:00:00:00:01",
		"infinibandGUID": "00:11:22:33:44:55:66:77",
		"portMappings":   []*nadv1.PortMapEntry{{HostPort: 8080, ContainerPort: 80, Protocol: "tcp"}},
		"bandwidth":      &nadv1.BandwidthEntry{IngressRate: 1000, IngressBurst: 2000, EgressRate: 3000, EgressBurst: 4000},
		"deviceID":       "0000:03:00.1",
	}
	if !reflect.DeepEqual(a.CapabilityArgs, wantCaps) {
		t.Errorf("CapabilityArgs\n got %#v\nwant %#v", a.CapabilityArgs, wantCaps)
	}
	if len(a.DefaultRoute) != 1 || a.DefaultRoute[0].String() != "10.1.1.1" {
		t.Errorf("DefaultRoute %v, want [10.1.1.1]", a.DefaultRoute)
	}
	// The requests ADD applies, computed once.
	wantReqs := []gateway.Request{{Attachment: 1, IfName: "ext0", GW: net.ParseIP("10.1.1.1")}}
	if !reflect.DeepEqual(p.DefaultRoutes, wantReqs) {
		t.Errorf("DefaultRoutes %+v, want %+v", p.DefaultRoutes, wantReqs)
	}
	wantA := `{"args":{"cni":{"foo":"bar","n":5}},"bridge":"br-a","capabilities":{"ips":true,"mac":true},"cniVersion":"1.0.0","name":"net-a","type":"bridge"}`
	if got := testutil.Decode(t, a.Config); !reflect.DeepEqual(got, testutil.Decode(t, []byte(wantA))) {
		t.Errorf("ns/a Config %s, want %s", a.Config, wantA)
	}

	if b.CapabilityArgs != nil || b.DefaultRoute != nil {
		t.Errorf("ns/b CapabilityArgs %v DefaultRoute %v, want none", b.CapabilityArgs, b.DefaultRoute)
	}
	wantB := `{"cniVersion":"1.0.0","name":"net-b","plugins":[
		{"type":"bridge","args":{"cni":{"keep":"yes","k":"v"}}},
		{"type":"tuning","args":{"cni":{"k":"v"}}}]}`
	if got := testutil.Decode(t, b.Config); !reflect.DeepEqual(got, testutil.Decode(t, []byte(wantB))) {
		t.Errorf("ns/b Config %s, want %s", b.Config, wantB)
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	p := &plan.Plan{
		Version:     plan.Version,
		ContainerID: "c0ffee",
		NetNS:       "/var/run/netns/cni-1",
		IfName:      "eth0",
		Args:        [][2]string{{"K8S_POD_NAMESPACE", "ns"}, {"K8S_POD_NAME", "p"}},
		Pod:         plan.PodRef{Namespace: "ns", Name: "p", UID: "uid-1"},
		Attachments: []plan.Attachment{
			{IfName: "eth0", Network: "cluster-net", Cluster: true, Config: json.RawMessage(clusterList),
				Result: json.RawMessage(`{"cniVersion":"1.0.0","ips":[{"address":"10.0.0.5/24"}]}`)},
			{IfName: "net1", Network: "ns/a", Config: json.RawMessage(confA),
				CapabilityArgs: map[string]any{"mac": "02:00:00:00:00:01", "ips": []any{"10.1.1.5/24"}},
				DefaultRoute:   mustIPs(t, "10.1.1.1", "fd00::1")},
		},
		DefaultRoutes: []gateway.Request{
			{Attachment: 1, IfName: "net1", GW: net.ParseIP("10.1.1.1")},
			{Attachment: 1, IfName: "net1", GW: net.ParseIP("fd00::1")},
		},
	}
	data, err := p.Marshal()
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	got, err := plan.Unmarshal(data)
	if err != nil {
		t.Fatalf("Unmarshal: %v", err)
	}
	if !reflect.DeepEqual(got, p) {
		t.Errorf("round trip\n got %+v\nwant %+v", got, p)
	}
	again, err := got.Marshal()
	if err != nil {
		t.Fatalf("Marshal again: %v", err)
	}
	if !bytes.Equal(again, data) {
		t.Errorf("second encoding differs\n got %s\nwant %s", again, data)
	}
}

func TestUnmarshalRejects(t *testing.T) {
	tests := []struct {
		name string
		data string
		want string
	}{
		{name: "corrupt JSON", data: `{"version":1,"containerID":"c`, want: "decode plan"},
		{name: "not an object", data: `[1,2]`, want: "decode plan"},
		{name: "empty", data: ``, want: "decode plan"},
		{name: "wrong version", data: `{"version":2,"containerID":"c","attachments":[]}`, want: "version 2"},
		{name: "no version", data: `{"containerID":"c","attachments":[]}`, want: "version 0"},
		{name: "missing container ID", data: `{"version":1,"attachments":[]}`, want: "no container ID"},
		{name: "attachment without interface", data: `{"version":1,"containerID":"c","attachments":[{"network":"n","config":{"type":"x"}}]}`, want: "attachment 0"},
		{name: "attachment without config", data: `{"version":1,"containerID":"c","attachments":[{"ifName":"eth0"},{"ifName":"net1","network":"n"}]}`, want: "attachment 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := plan.Unmarshal([]byte(tt.data))
			if err == nil {
				t.Fatalf("Unmarshal accepted %s as %+v", tt.data, p)
			}
			if p != nil {
				t.Errorf("got plan %+v with the error", p)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func mustIPs(t *testing.T, ips ...string) []net.IP {
	t.Helper()
	out := make([]net.IP, 0, len(ips))
	for _, s := range ips {
		ip := net.ParseIP(s)
		if ip == nil {
			t.Fatalf("bad IP %q", s)
		}
		out = append(out, ip)
	}
	return out
}

// stalePods is a cache that still holds the pod a recreated one replaced;
// FreshPod reads past it.
type stalePods struct {
	cached, fresh *corev1.Pod
	freshReads    int
}

func (s *stalePods) GetPod(context.Context, string, string) (*corev1.Pod, error) {
	return s.cached, nil
}

func (s *stalePods) FreshPod(context.Context, string, string) (*corev1.Pod, error) {
	s.freshReads++
	return s.fresh, nil
}

// TestBuildStaleCache: a UID mismatch from a cache is checked once against
// the API before the runtime is told to try again.
func TestBuildStaleCache(t *testing.T) {
	tests := []struct {
		name     string
		fresh    *corev1.Pod
		wantCode uint
	}{
		{name: "the API has the new pod", fresh: newPod("ns", "p", "uid-1", nil)},
		{name: "the API has the old pod too", fresh: newPod("ns", "p", "uid-2", nil), wantCode: types.ErrTryAgainLater},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pods := &stalePods{cached: newPod("ns", "p", "uid-2", nil), fresh: tt.fresh}
			nc := clusterFileConf(t)
			b := &plan.Builder{Conf: nc, Pods: pods, Resolver: &nad.Resolver{NADs: fixtureNADs(), ConfDir: nc.ConfDir}, Log: slog.New(slog.DiscardHandler)}
			_, err := b.Build(context.Background(), plan.Request{ContainerID: "c1", IfName: "eth0", Pod: plan.PodRef{Namespace: "ns", Name: "p", UID: "uid-1"}})
			if pods.freshReads != 1 {
				t.Errorf("FreshPod read %d times, want 1", pods.freshReads)
			}
			var te *types.Error
			switch {
			case tt.wantCode == 0 && err != nil:
				t.Fatalf("Build: %v", err)
			case tt.wantCode != 0 && (!errors.As(err, &te) || te.Code != tt.wantCode):
				t.Fatalf("Build error = %v, want code %d", err, tt.wantCode)
			}
		})
	}
}

// clusterFileConf is braid's config with the cluster network in a file.
func clusterFileConf(t *testing.T) *netconf.NetConf {
	t.Helper()
	cluster := filepath.Join(t.TempDir(), "cluster.conflist")
	if err := os.WriteFile(cluster, []byte(clusterList), 0o600); err != nil {
		t.Fatal(err)
	}
	nc, err := netconf.Parse(fmt.Appendf(nil, `{"cniVersion":"1.0.0","name":"braid","type":"braid","clusterNetwork":%q}`, cluster))
	if err != nil {
		t.Fatal(err)
	}
	return nc
}

// TestBuildTakesThePodsUID: without K8S_POD_UID the plan takes the UID of
// the pod it read, so the status write cannot land on a pod recreated
// under the same name meanwhile.
func TestBuildTakesThePodsUID(t *testing.T) {
	nc := clusterFileConf(t)
	pods := &mapPods{pods: map[string]*corev1.Pod{"ns/p": newPod("ns", "p", "uid-7", nil)}}
	b := &plan.Builder{Conf: nc, Pods: pods, Resolver: &nad.Resolver{NADs: fixtureNADs(), ConfDir: nc.ConfDir}, Log: slog.New(slog.DiscardHandler)}
	p, err := b.Build(context.Background(), plan.Request{ContainerID: "c1", IfName: "eth0", Pod: plan.PodRef{Namespace: "ns", Name: "p"}})
	if err != nil {
		t.Fatal(err)
	}
	if p.Pod.UID != "uid-7" {
		t.Errorf("plan's pod UID = %q, want the pod's uid-7", p.Pod.UID)
	}
}

// barrierNADs answers no read until want reads have arrived, or a minute
// has passed: reads made one after the other fail.
type barrierNADs struct {
	mapNADs
	want int
	mu   sync.Mutex
	n    int
	all  chan struct{}
}

func (b *barrierNADs) GetNAD(ctx context.Context, namespace, name string) (*nadv1.NetworkAttachmentDefinition, error) {
	b.mu.Lock()
	if b.n++; b.n == b.want {
		close(b.all)
	}
	b.mu.Unlock()
	select {
	case <-b.all:
		return b.mapNADs.GetNAD(ctx, namespace, name)
	case <-time.After(time.Minute):
		return nil, errors.New("reads made one at a time")
	}
}

// TestBuildReadsNADsAtOnce: the selections' NADs are read concurrently (one
// round trip's time in the thin plugin, not N), and the error reported is
// the first selection's in order, whichever read finished first.
func TestBuildReadsNADsAtOnce(t *testing.T) {
	tests := []struct {
		name     string
		networks string
		want     []want
		wantMsg  string
	}{
		{
			name:     "all found",
			networks: "a, b, other/x",
			want:     []want{{"eth0", "cluster-net", true}, {"net1", "ns/a", false}, {"net2", "ns/b", false}, {"net3", "other/x", false}},
		},
		{name: "two missing", networks: "a, missing-1, b, missing-2", wantMsg: "ns/missing-1 not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				nc := clusterFileConf(t)
				nads := &barrierNADs{mapNADs: fixtureNADs(), want: strings.Count(tt.networks, ",") + 1, all: make(chan struct{})}
				pods := &mapPods{pods: map[string]*corev1.Pod{"ns/p": newPod("ns", "p", "uid-1", map[string]string{annotations.NetworksKey: tt.networks})}}
				b := &plan.Builder{Conf: nc, Pods: pods, Resolver: &nad.Resolver{NADs: nads, ConfDir: nc.ConfDir}, Log: slog.New(slog.DiscardHandler)}
				p, err := b.Build(t.Context(), plan.Request{ContainerID: "c1", IfName: "eth0", Pod: plan.PodRef{Namespace: "ns", Name: "p"}})
				if tt.wantMsg != "" {
					testutil.WantCNIError(t, err, types.ErrTryAgainLater, tt.wantMsg)
					return
				}
				if err != nil {
					t.Fatalf("Build: %v", err)
				}
				var got []want
				for _, a := range p.Attachments {
					got = append(got, want{a.IfName, a.Network, a.Cluster})
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Errorf("attachments %+v, want %+v", got, tt.want)
				}
			})
		})
	}
}
