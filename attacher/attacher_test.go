package attacher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"slices"
	"sync"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	k8stypes "k8s.io/apimachinery/pkg/types"

	"github.com/braid-cni/braid/delegate"
	"github.com/braid-cni/braid/gateway"
	"github.com/braid-cni/braid/journal"
	"github.com/braid-cni/braid/plan"
	"github.com/braid-cni/braid/status"
)

// The delegate config names of the three networks of testPlan. The fake
// invoker sees only the delegate, so it keys everything by these.
const (
	clusterName = "cluster"
	blueName    = "blue"
	greenName   = "green"
)

// invocation is one call the fake invoker saw.
type invocation struct {
	verb        string // ADD, DEL, CHECK, STATUS, GC or SETCACHE
	network     string // the delegate config's name
	containerID string
	ifName      string
	netns       string
	valid       []types.GCAttachment // GC only
	result      *current.Result      // SETCACHE only
}

// String is what the order assertions compare: verb, network, interface.
func (c invocation) String() string { return c.verb + " " + c.network + " " + c.ifName }

// fakeInvoker records every call and answers ADD with a fresh copy of the
// canned result of the network. fail maps "VERB network" to the error that
// call returns.
type fakeInvoker struct {
	mu      sync.Mutex
	calls   []invocation
	results map[string]func() *current.Result
	fail    map[string]error
	// onAdd, when set, runs inside ADD of a network, before it answers.
	onAdd map[string]func()
}

var _ Invoker = (*fakeInvoker)(nil)

func newFakeInvoker() *fakeInvoker {
	return &fakeInvoker{
		results: map[string]func() *current.Result{
			clusterName: clusterResult,
			blueName:    blueResult,
			greenName:   greenResult,
		},
		fail: map[string]error{},
	}
}

func (f *fakeInvoker) record(c invocation) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, c)
	return f.fail[c.verb+" "+c.network]
}

func (f *fakeInvoker) Add(_ context.Context, d *delegate.Delegate, rt delegate.Runtime) (types.Result, error) {
	if err := f.record(invocation{verb: "ADD", network: d.Name(), containerID: rt.ContainerID, ifName: rt.IfName, netns: rt.NetNS}); err != nil {
		return nil, err
	}
	if hook := f.onAdd[d.Name()]; hook != nil {
		hook()
	}
	mk, ok := f.results[d.Name()]
	if !ok {
		return nil, fmt.Errorf("fake invoker: no result for network %q", d.Name())
	}
	return mk(), nil
}

func (f *fakeInvoker) Del(_ context.Context, d *delegate.Delegate, rt delegate.Runtime) error {
	return f.record(invocation{verb: "DEL", network: d.Name(), containerID: rt.ContainerID, ifName: rt.IfName, netns: rt.NetNS})
}

func (f *fakeInvoker) Check(_ context.Context, d *delegate.Delegate, rt delegate.Runtime) error {
	return f.record(invocation{verb: "CHECK", network: d.Name(), containerID: rt.ContainerID, ifName: rt.IfName, netns: rt.NetNS})
}

func (f *fakeInvoker) Status(_ context.Context, d *delegate.Delegate) error {
	return f.record(invocation{verb: "STATUS", network: d.Name()})
}

func (f *fakeInvoker) GC(_ context.Context, d *delegate.Delegate, valid []types.GCAttachment) error {
	return f.record(invocation{verb: "GC", network: d.Name(), valid: append([]types.GCAttachment(nil), valid...)})
}

func (f *fakeInvoker) SetCachedResult(d *delegate.Delegate, rt delegate.Runtime, res types.Result) error {
	cur, err := current.NewResultFromResult(res)
	if err != nil {
		return err
	}
	return f.record(invocation{verb: "SETCACHE", network: d.Name(), containerID: rt.ContainerID, ifName: rt.IfName, netns: rt.NetNS, result: cur})
}

// seen lists the calls as "VERB network ifname", optionally of some verbs only.
func (f *fakeInvoker) seen(verbs ...string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.calls {
		if len(verbs) == 0 || slices.Contains(verbs, c.verb) {
			out = append(out, c.String())
		}
	}
	return out
}

func (f *fakeInvoker) callsOf(verb string) []invocation {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []invocation
	for _, c := range f.calls {
		if c.verb == verb {
			out = append(out, c)
		}
	}
	return out
}

func (f *fakeInvoker) reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = nil
}

// delegateError is what delegate.Invoker returns when a plugin fails: the
// libcni error, wrapping the plugin's own *types.Error, inside a
// *delegate.Error that names the plugin.
func delegateError(plugin string, code uint, msg string) error {
	return &delegate.Error{
		Plugin: plugin,
		Err:    fmt.Errorf("plugin type=%q failed (add): %w", plugin, types.NewError(code, msg, "some details")),
	}
}

// recorded is one Record call.
type recorded struct {
	pod      status.PodRef
	statuses []nadv1.NetworkStatus
}

// event is one Event call.
type event struct {
	pod                        status.PodRef
	eventType, reason, message string
}

// fakeRecorder records statuses and events; recordErr and eventErr are
// returned by every Record and Event call.
type fakeRecorder struct {
	mu        sync.Mutex
	records   []recorded
	events    []event
	recordErr error
	eventErr  error
	// canceled: messages of the events sent with a done context.
	canceled []string
}

var _ Recorder = (*fakeRecorder)(nil)

func (r *fakeRecorder) Record(_ context.Context, pod status.PodRef, statuses []nadv1.NetworkStatus) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.records = append(r.records, recorded{pod: pod, statuses: statuses})
	return r.recordErr
}

func (r *fakeRecorder) Event(ctx context.Context, pod status.PodRef, eventType, reason, message string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ctx.Err() != nil {
		r.canceled = append(r.canceled, message)
	}
	r.events = append(r.events, event{pod: pod, eventType: eventType, reason: reason, message: message})
	return r.eventErr
}

// routeCall is one call of the Routes func.
type routeCall struct {
	netns string
	reqs  []gateway.Request
}

// fakeRoutes stands in for gateway.ApplyToNetns.
type fakeRoutes struct {
	mu    sync.Mutex
	calls []routeCall
	err   error
}

func (r *fakeRoutes) apply(netns string, reqs []gateway.Request) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, routeCall{netns: netns, reqs: append([]gateway.Request(nil), reqs...)})
	return r.err
}

// fixture is an Attacher wired to fakes and a real journal.
type fixture struct {
	attacher *Attacher
	invoker  *fakeInvoker
	journal  *journal.Store
	recorder *fakeRecorder
	routes   *fakeRoutes
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{
		invoker:  newFakeInvoker(),
		journal:  journal.New(t.TempDir()),
		recorder: &fakeRecorder{},
		routes:   &fakeRoutes{},
	}
	f.attacher = &Attacher{
		Invoker:  f.invoker,
		Journal:  f.journal,
		Recorder: f.recorder,
		Routes:   f.routes.apply,
		Log:      slog.New(slog.DiscardHandler),
	}
	return f
}

// unrecorded are the ways an ADD has nobody to tell: no recorder (no API
// access), or no pod (the runtime sent no K8S_POD_* args).
func unrecorded() []struct {
	name  string
	setup func(f *fixture, p *plan.Plan)
} {
	return []struct {
		name  string
		setup func(f *fixture, p *plan.Plan)
	}{
		{"no recorder", func(f *fixture, _ *plan.Plan) { f.attacher.Recorder = nil }},
		{"no pod", func(_ *fixture, p *plan.Plan) { p.Pod = plan.PodRef{} }},
	}
}

// journaled reads the plan journaled for id; t fails if there is none.
func (f *fixture) journaled(t *testing.T, id string) *plan.Plan {
	t.Helper()
	p, err := f.journal.Load(id)
	if err != nil {
		t.Fatalf("journal entry %s: %v", id, err)
	}
	return p
}

// assertNoJournal fails t unless the journal has no entry for id.
func (f *fixture) assertNoJournal(t *testing.T, id string) {
	t.Helper()
	if _, err := f.journal.Read(id); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("journal entry %s: err = %v, want it removed", id, err)
	}
}

func conf(version, name, pluginType string) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"cniVersion":%q,"name":%q,"type":%q}`, version, name, pluginType))
}

// testPlan is a pod with the cluster network on eth0 and two NADs on net1
// and net2, as plan.Builder would make it.
func testPlan(id, version string) *plan.Plan {
	return &plan.Plan{
		Version:     plan.Version,
		ContainerID: id,
		NetNS:       "/var/run/netns/" + id,
		IfName:      "eth0",
		Args:        [][2]string{{"K8S_POD_NAMESPACE", "ns1"}, {"K8S_POD_NAME", "web"}},
		Pod:         plan.PodRef{Namespace: "ns1", Name: "web", UID: k8stypes.UID("uid-" + id)},
		Attachments: []plan.Attachment{
			{IfName: "eth0", Network: clusterName, Cluster: true, Config: conf(version, clusterName, "ptp")},
			{IfName: "net1", Network: "ns1/" + blueName, Config: conf(version, blueName, "macvlan")},
			{IfName: "net2", Network: "ns1/" + greenName, Config: conf(version, greenName, "bridge")},
		},
	}
}

func cidr(s string) net.IPNet {
	ip, n, err := net.ParseCIDR(s)
	if err != nil {
		panic(err)
	}
	n.IP = ip
	return *n
}

// clusterResult: host veth, then eth0 with a dual-stack address and both
// default routes.
func clusterResult() *current.Result {
	return &current.Result{
		CNIVersion: "1.0.0",
		Interfaces: []*current.Interface{
			{Name: "veth1234"},
			{Name: "eth0", Mac: "0a:00:00:00:00:01", Sandbox: "/var/run/netns/pod"},
		},
		IPs: []*current.IPConfig{
			{Interface: current.Int(1), Address: cidr("10.244.1.5/24"), Gateway: net.ParseIP("10.244.1.1")},
			{Interface: current.Int(1), Address: cidr("fd00::5/64"), Gateway: net.ParseIP("fd00::1")},
		},
		Routes: []*types.Route{
			{Dst: cidr("0.0.0.0/0"), GW: net.ParseIP("10.244.1.1")},
			{Dst: cidr("::/0"), GW: net.ParseIP("fd00::1")},
		},
		DNS: types.DNS{Nameservers: []string{"10.96.0.10"}},
	}
}

// blueResult: a macvlan-like result, one sandbox interface.
func blueResult() *current.Result {
	return &current.Result{
		CNIVersion: "1.0.0",
		Interfaces: []*current.Interface{{Name: "net1", Mac: "0a:00:00:00:01:01", Sandbox: "/var/run/netns/pod"}},
		IPs:        []*current.IPConfig{{Interface: current.Int(0), Address: cidr("10.1.1.5/24"), Gateway: net.ParseIP("10.1.1.1")}},
		Routes:     []*types.Route{{Dst: cidr("10.1.0.0/16"), GW: net.ParseIP("10.1.1.1")}},
	}
}

// greenResult: a bridge-like result, the bridge first and net2 second.
func greenResult() *current.Result {
	return &current.Result{
		CNIVersion: "1.0.0",
		Interfaces: []*current.Interface{
			{Name: "br-green", Mac: "0a:00:00:00:02:00"},
			{Name: "net2", Mac: "0a:00:00:00:02:01", Sandbox: "/var/run/netns/pod"},
		},
		IPs: []*current.IPConfig{{Interface: current.Int(1), Address: cidr("10.2.2.5/24"), Gateway: net.ParseIP("10.2.2.1")}},
	}
}

// decodedResult is a printed CNI result of any version from 0.3.0 on.
type decodedResult struct {
	CNIVersion string `json:"cniVersion"`
	Interfaces []struct {
		Name    string `json:"name"`
		Sandbox string `json:"sandbox"`
	} `json:"interfaces"`
	IPs []struct {
		Interface *int   `json:"interface"`
		Address   string `json:"address"`
	} `json:"ips"`
	Routes []struct {
		Dst string `json:"dst"`
		GW  string `json:"gw"`
	} `json:"routes"`
}

func decode(t *testing.T, res types.Result) decodedResult {
	t.Helper()
	data, err := json.Marshal(res)
	if err != nil {
		t.Fatalf("encode result: %v", err)
	}
	var d decodedResult
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("decode result %s: %v", data, err)
	}
	return d
}

// journaledResult decodes the result journaled for attachment i.
func journaledResult(t *testing.T, p *plan.Plan, i int) *current.Result {
	t.Helper()
	var r current.Result
	if len(p.Attachments[i].Result) == 0 {
		t.Fatalf("attachment %d (%s) has no journaled result", i, p.Attachments[i].Network)
	}
	if err := json.Unmarshal(p.Attachments[i].Result, &r); err != nil {
		t.Fatalf("attachment %d: decode journaled result: %v", i, err)
	}
	return &r
}

// defaultGWs lists the gateways of r's default routes, as strings.
func defaultGWs(r *current.Result) []string {
	var out []string
	for _, rt := range r.Routes {
		if gateway.IsDefault(&rt.Dst) {
			out = append(out, rt.GW.String())
		}
	}
	return out
}
