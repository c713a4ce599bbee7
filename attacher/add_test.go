package attacher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	k8stypes "k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/braid-cni/braid/delegate"
	"github.com/braid-cni/braid/gateway"
	"github.com/braid-cni/braid/internal/testutil"
	"github.com/braid-cni/braid/journal"
	"github.com/braid-cni/braid/plan"
	"github.com/braid-cni/braid/status"
)

var allAdds = []string{"ADD cluster eth0", "ADD blue net1", "ADD green net2"}

func TestAdd(t *testing.T) {
	for _, version := range testutil.SpecVersions() {
		t.Run(version, func(t *testing.T) {
			f := newFixture(t)
			p := testPlan("c1", version)
			res, err := f.attacher.addPlan(context.Background(), p, version)
			if err != nil {
				t.Fatalf("Add: %v", err)
			}

			if got := f.invoker.seen(); !slices.Equal(got, allAdds) {
				t.Errorf("invoker calls = %q, want %q", got, allAdds)
			}
			for _, c := range f.invoker.calls {
				if c.containerID != "c1" || c.netns != p.NetNS {
					t.Errorf("%s: container %q netns %q, want c1 %s", c, c.containerID, c.netns, p.NetNS)
				}
			}
			if len(f.routes.calls) != 0 {
				t.Errorf("Routes called %d times without a default-route request", len(f.routes.calls))
			}

			checkJournalAfterAdd(t, f, p)
			checkMerged(t, decode(t, res), version)
			checkRecorded(t, f.recorder, "uid-c1")
		})
	}
}

func checkJournalAfterAdd(t *testing.T, f *fixture, p *plan.Plan) {
	t.Helper()
	j := f.journaled(t, p.ContainerID)
	if len(j.Attachments) != 3 {
		t.Fatalf("journal holds %d attachments, want 3", len(j.Attachments))
	}
	wantAddr := []string{"10.244.1.5/24", "10.1.1.5/24", "10.2.2.5/24"}
	for i, att := range j.Attachments {
		if att.IfName != p.Attachments[i].IfName || att.Network != p.Attachments[i].Network || string(att.Config) != string(p.Attachments[i].Config) {
			t.Errorf("journal attachment %d = %s %s %s, want %s %s %s", i, att.IfName, att.Network, att.Config,
				p.Attachments[i].IfName, p.Attachments[i].Network, p.Attachments[i].Config)
		}
		r := journaledResult(t, j, i)
		if len(r.IPs) == 0 || r.IPs[0].Address.String() != wantAddr[i] {
			t.Errorf("journal attachment %d result IPs = %v, want first %s", i, r.IPs, wantAddr[i])
		}
	}
	if !j.Attachments[0].Cluster || j.Attachments[1].Cluster || j.Attachments[2].Cluster {
		t.Errorf("journal cluster flags = %v %v %v, want true false false", j.Attachments[0].Cluster, j.Attachments[1].Cluster, j.Attachments[2].Cluster)
	}
}

func checkMerged(t *testing.T, d decodedResult, version string) {
	t.Helper()
	if d.CNIVersion != version {
		t.Errorf("result cniVersion = %q, want %q", d.CNIVersion, version)
	}
	var ifaces []string
	for _, i := range d.Interfaces {
		ifaces = append(ifaces, i.Name)
	}
	if want := []string{"veth1234", "eth0", "net1", "br-green", "net2"}; !slices.Equal(ifaces, want) {
		t.Errorf("result interfaces = %q, want %q", ifaces, want)
	}
	var ips []string
	for _, ip := range d.IPs {
		idx := "none"
		if ip.Interface != nil {
			idx = fmt.Sprint(*ip.Interface)
			// The index must point at the interface that holds the address.
			if *ip.Interface >= len(d.Interfaces) || d.Interfaces[*ip.Interface].Sandbox == "" {
				t.Errorf("IP %s points at interface %d, not a sandbox interface", ip.Address, *ip.Interface)
			}
		}
		ips = append(ips, ip.Address+"@"+idx)
	}
	want := []string{"10.244.1.5/24@1", "fd00::5/64@1", "10.1.1.5/24@2", "10.2.2.5/24@4"}
	if !slices.Equal(ips, want) {
		t.Errorf("result IPs = %q, want %q", ips, want)
	}
}

func checkRecorded(t *testing.T, r *fakeRecorder, uid string) {
	t.Helper()
	if len(r.records) != 1 {
		t.Fatalf("Record called %d times, want 1", len(r.records))
	}
	rec := r.records[0]
	wantPod := status.PodRef{Namespace: "ns1", Name: "web", UID: k8stypes.UID(uid)}
	if rec.pod != wantPod {
		t.Errorf("Record pod = %+v, want %+v", rec.pod, wantPod)
	}
	type entry struct {
		Name, Interface string
		Default         bool
		IPs, Gateway    []string
	}
	var got []entry
	for _, s := range rec.statuses {
		got = append(got, entry{s.Name, s.Interface, s.Default, s.IPs, s.Gateway})
	}
	want := []entry{
		{"cluster", "eth0", true, []string{"10.244.1.5", "fd00::5"}, []string{"10.244.1.1", "fd00::1"}},
		{"ns1/blue", "net1", false, []string{"10.1.1.5"}, nil},
		{"ns1/green", "net2", false, []string{"10.2.2.5"}, nil},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("statuses =\n%+v\nwant\n%+v", got, want)
	}
	// One event for the whole ADD, listing every interface in plan order.
	wantEvents := []event{
		{wantPod, "Normal", "AddedInterface", "Add eth0 [10.244.1.5/24 fd00::5/64] from cluster, net1 [10.1.1.5/24] from ns1/blue, net2 [10.2.2.5/24] from ns1/green"},
	}
	if !reflect.DeepEqual(r.events, wantEvents) {
		t.Errorf("events =\n%+v\nwant\n%+v", r.events, wantEvents)
	}
}

func TestAddRecordsNothingWithoutAPIOrPod(t *testing.T) {
	for _, tt := range unrecorded() {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			p := testPlan("c1", "1.0.0")
			tt.setup(f, p)
			if _, err := f.attacher.addPlan(context.Background(), p, "1.0.0"); err != nil {
				t.Fatalf("Add: %v", err)
			}
			// No status and no AddedInterface event; the one Warning
			// event is asserted in failure_events_test.go.
			if n := len(f.recorder.records) + len(eventsOf(f.recorder, "Normal")); n != 0 {
				t.Errorf("recorder got %d statuses and %d Normal events, want none", len(f.recorder.records), len(eventsOf(f.recorder, "Normal")))
			}
			f.journaled(t, "c1")
		})
	}
}

func TestAddRollsBack(t *testing.T) {
	tests := []struct {
		name        string
		fail        string // "VERB network" of the failing call
		err         error
		alsoFail    map[string]error // more failing calls
		mutate      func(p *plan.Plan)
		wantCalls   []string
		wantCode    uint
		wantMsg     []string
		keepJournal bool
	}{
		{
			name:      "third attachment, try again later",
			fail:      "ADD green",
			err:       delegateError("bridge", types.ErrTryAgainLater, "bridge br-green is busy"),
			wantCalls: append(slices.Clone(allAdds), "DEL green net2", "DEL blue net1", "DEL cluster eth0"),
			wantCode:  types.ErrTryAgainLater,
			wantMsg:   []string{"ns1/green", "bridge", "net2", "bridge br-green is busy"},
		},
		{
			name:      "third attachment, invalid config",
			fail:      "ADD green",
			err:       delegateError("bridge", types.ErrInvalidNetworkConfig, "bad vlan"),
			wantCalls: append(slices.Clone(allAdds), "DEL green net2", "DEL blue net1", "DEL cluster eth0"),
			wantCode:  types.ErrInvalidNetworkConfig,
			wantMsg:   []string{"ns1/green", "bridge", "net2", "bad vlan"},
		},
		{
			name:      "second attachment",
			fail:      "ADD blue",
			err:       delegateError("macvlan", 12, "master eth9 not found"),
			wantCalls: []string{"ADD cluster eth0", "ADD blue net1", "DEL blue net1", "DEL cluster eth0"},
			wantCode:  12,
			wantMsg:   []string{"ns1/blue", "macvlan", "net1", "master eth9 not found"},
		},
		{
			name:      "cluster network",
			fail:      "ADD cluster",
			err:       delegateError("ptp", types.ErrIOFailure, "no space"),
			wantCalls: []string{"ADD cluster eth0", "DEL cluster eth0"},
			wantCode:  types.ErrIOFailure,
			wantMsg:   []string{"network cluster", "ptp", "eth0", "no space"},
		},
		{
			name:      "error without a CNI code",
			fail:      "ADD green",
			err:       &delegate.Error{Plugin: "bridge", Err: errors.New("fork/exec /opt/cni/bin/bridge: permission denied")},
			wantCalls: append(slices.Clone(allAdds), "DEL green net2", "DEL blue net1", "DEL cluster eth0"),
			wantCode:  types.ErrInternal,
			wantMsg:   []string{"ns1/green", "bridge", "net2", "permission denied"},
		},
		{
			name: "config that does not load",
			mutate: func(p *plan.Plan) {
				p.Attachments[2].Config = json.RawMessage(`{"cniVersion":"1.0.0","name":"green"}`)
			},
			// Nothing ran for green, so there is nothing of it to delete.
			wantCalls: []string{"ADD cluster eth0", "ADD blue net1", "DEL blue net1", "DEL cluster eth0"},
			wantCode:  types.ErrInvalidNetworkConfig,
			wantMsg:   []string{"ns1/green", "net2", "invalid delegate config"},
		},
		{
			name:      "rollback DEL fails too",
			fail:      "ADD green",
			err:       delegateError("bridge", types.ErrTryAgainLater, "busy"),
			alsoFail:  map[string]error{"DEL blue": delegateError("macvlan", types.ErrIOFailure, "stuck")},
			wantCalls: append(slices.Clone(allAdds), "DEL green net2", "DEL blue net1", "DEL cluster eth0"),
			wantCode:  types.ErrTryAgainLater,
			wantMsg:   []string{"ns1/green", "busy"},
			// The runtime's DEL after the failed ADD needs the plan.
			keepJournal: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			if tt.fail != "" {
				f.invoker.fail[tt.fail] = tt.err
			}
			for k, v := range tt.alsoFail {
				f.invoker.fail[k] = v
			}
			p := testPlan("c1", "1.0.0")
			if tt.mutate != nil {
				tt.mutate(p)
			}
			res, err := f.attacher.addPlan(context.Background(), p, "1.0.0")
			if res != nil {
				t.Errorf("result = %v, want nil", res)
			}
			te := testutil.CNIError(t, err)
			if te.Code != tt.wantCode {
				t.Errorf("code = %d, want %d (%v)", te.Code, tt.wantCode, te)
			}
			for _, s := range tt.wantMsg {
				if !strings.Contains(te.Msg, s) {
					t.Errorf("message %q does not contain %q", te.Msg, s)
				}
			}
			if got := f.invoker.seen(); !slices.Equal(got, tt.wantCalls) {
				t.Errorf("invoker calls = %q, want %q", got, tt.wantCalls)
			}
			if tt.keepJournal {
				if _, err := f.journal.Load("c1"); err != nil {
					t.Errorf("journal entry c1 after a rollback that left something behind: %v, want it kept", err)
				}
			} else {
				f.assertNoJournal(t, "c1")
			}
			// No status and no AddedInterface event; the one Warning
			// event is asserted in failure_events_test.go.
			if n := len(f.recorder.records) + len(eventsOf(f.recorder, "Normal")); n != 0 {
				t.Errorf("recorder got %d statuses and %d Normal events, want none", len(f.recorder.records), len(eventsOf(f.recorder, "Normal")))
			}
		})
	}
}

func TestAddRecorderFailure(t *testing.T) {
	notFound := apierrors.NewNotFound(schema.GroupResource{Resource: "pods"}, "web")
	// What the API server answers a patch whose UID is not the stored pod's.
	recreated := apierrors.NewInvalid(schema.GroupKind{Kind: "Pod"}, "web", field.ErrorList{
		field.Invalid(field.NewPath("metadata", "uid"), "1111", "field is immutable"),
	})
	tests := []struct {
		name      string
		recordErr error
		eventErr  error
		wantCode  uint // 0: ADD succeeds
	}{
		{
			name:      "API server unavailable",
			recordErr: fmt.Errorf("patch network-status of pod ns1/web: %w", apierrors.NewServiceUnavailable("etcd is down")),
			wantCode:  types.ErrTryAgainLater,
		},
		{
			name:      "forbidden",
			recordErr: fmt.Errorf("patch network-status of pod ns1/web: %w", apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "web", errors.New("no RBAC"))),
			wantCode:  types.ErrTryAgainLater,
		},
		{
			name:      "connection refused",
			recordErr: errors.New("dial tcp 10.96.0.1:443: connect: connection refused"),
			wantCode:  types.ErrTryAgainLater,
		},
		// A pod deleted meanwhile is not a failure.
		{name: "pod not found, wrapped as status.Writer does", recordErr: fmt.Errorf("patch network-status of pod ns1/web: %w", notFound)},
		{name: "pod not found, wrapped twice", recordErr: fmt.Errorf("record: %w", fmt.Errorf("patch network-status of pod ns1/web: %w", notFound))},
		{name: "pod not found, bare", recordErr: notFound},
		// Nor is a pod recreated under the same name: this status was for
		// the old one.
		{name: "pod recreated, UID refused", recordErr: fmt.Errorf("patch network-status of pod ns1/web: %w", recreated)},
		{
			name:      "other conflict",
			recordErr: fmt.Errorf("patch network-status of pod ns1/web: %w", apierrors.NewConflict(schema.GroupResource{Resource: "pods"}, "web", errors.New("the object has been modified"))),
			wantCode:  types.ErrTryAgainLater,
		},
		// Events are best effort.
		{name: "events fail", eventErr: errors.New("events are forbidden")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.recorder.recordErr, f.recorder.eventErr = tt.recordErr, tt.eventErr
			res, err := f.attacher.addPlan(context.Background(), testPlan("c1", "1.0.0"), "1.0.0")
			if len(f.recorder.records) != 1 {
				t.Errorf("Record called %d times, want 1", len(f.recorder.records))
			}
			// Sent alongside the status, whatever becomes of it.
			if got := eventsOf(f.recorder, "Normal"); len(got) != 1 {
				t.Errorf("%d Normal events, want the ADD's one", len(got))
			}
			if tt.wantCode == 0 {
				if err != nil {
					t.Fatalf("Add: %v", err)
				}
				if d := decode(t, res); len(d.Interfaces) != 5 {
					t.Errorf("result has %d interfaces, want 5", len(d.Interfaces))
				}
				if got := f.invoker.seen(); !slices.Equal(got, allAdds) {
					t.Errorf("invoker calls = %q, want %q", got, allAdds)
				}
				f.journaled(t, "c1")
				return
			}
			te := testutil.CNIError(t, err)
			if te.Code != tt.wantCode {
				t.Errorf("code = %d, want %d (%v)", te.Code, tt.wantCode, te)
			}
			if !strings.Contains(te.Msg, "network-status") {
				t.Errorf("message %q does not say what failed", te.Msg)
			}
			wantCalls := append(slices.Clone(allAdds), "DEL green net2", "DEL blue net1", "DEL cluster eth0")
			if got := f.invoker.seen(); !slices.Equal(got, wantCalls) {
				t.Errorf("invoker calls = %q, want %q", got, wantCalls)
			}
			f.assertNoJournal(t, "c1")
		})
	}
}

func TestAddDefaultRoute(t *testing.T) {
	for _, version := range testutil.SpecVersions() {
		t.Run(version, func(t *testing.T) {
			f := newFixture(t)
			p := testPlan("c1", version)
			p.Attachments[1].DefaultRoute = []net.IP{net.ParseIP("10.1.1.1")}
			res, err := f.attacher.addPlan(context.Background(), p, version)
			if err != nil {
				t.Fatalf("Add: %v", err)
			}

			wantReqs := []routeCall{{netns: p.NetNS, reqs: []gateway.Request{{Attachment: 1, IfName: "net1", GW: net.ParseIP("10.1.1.1")}}}}
			if !reflect.DeepEqual(f.routes.calls, wantReqs) {
				t.Errorf("Routes calls = %+v, want %+v", f.routes.calls, wantReqs)
			}

			// Every cached result is rewritten, after all ADDs.
			wantCalls := append(slices.Clone(allAdds), "SETCACHE cluster eth0", "SETCACHE blue net1", "SETCACHE green net2")
			if got := f.invoker.seen(); !slices.Equal(got, wantCalls) {
				t.Errorf("invoker calls = %q, want %q", got, wantCalls)
			}
			wantGWs := [][]string{{"fd00::1"}, {"10.1.1.1"}, nil}
			for i, c := range f.invoker.callsOf("SETCACHE") {
				if c.containerID != "c1" || c.netns != p.NetNS {
					t.Errorf("%s: container %q netns %q, want c1 %s", c, c.containerID, c.netns, p.NetNS)
				}
				if got := defaultGWs(c.result); !slices.Equal(got, wantGWs[i]) {
					t.Errorf("%s: cached default gateways = %q, want %q", c, got, wantGWs[i])
				}
			}

			// The journal says what the netns says.
			j := f.journaled(t, "c1")
			for i := range j.Attachments {
				if got := defaultGWs(journaledResult(t, j, i)); !slices.Equal(got, wantGWs[i]) {
					t.Errorf("journal attachment %d default gateways = %q, want %q", i, got, wantGWs[i])
				}
			}

			// So does the merged result: one default route per family.
			var defaults []string
			for _, r := range decode(t, res).Routes {
				if r.Dst == "0.0.0.0/0" || r.Dst == "::/0" {
					defaults = append(defaults, r.Dst+" via "+r.GW)
				}
			}
			if want := []string{"::/0 via fd00::1", "0.0.0.0/0 via 10.1.1.1"}; !slices.Equal(defaults, want) {
				t.Errorf("merged default routes = %q, want %q", defaults, want)
			}

			// And the status: net1 holds the default route now.
			if len(f.recorder.records) != 1 {
				t.Fatalf("Record called %d times, want 1", len(f.recorder.records))
			}
			byIf := map[string]nadv1.NetworkStatus{}
			for _, s := range f.recorder.records[0].statuses {
				byIf[s.Interface] = s
			}
			if byIf["eth0"].Default || !byIf["net1"].Default || byIf["net2"].Default {
				t.Errorf("Default: eth0 %v net1 %v net2 %v, want false true false", byIf["eth0"].Default, byIf["net1"].Default, byIf["net2"].Default)
			}
			if got := byIf["net1"].Gateway; !slices.Equal(got, []string{"10.1.1.1"}) {
				t.Errorf("net1 gateway = %q, want [10.1.1.1]", got)
			}
		})
	}
}

func TestAddDefaultRouteFailure(t *testing.T) {
	tests := []struct {
		name       string
		gws        [][]net.IP // per attachment
		routesErr  error
		fail       string
		wantCode   uint
		wantRoutes int // Routes calls
	}{
		{
			name:      "netns refuses the route",
			gws:       [][]net.IP{nil, {net.ParseIP("10.1.1.1")}, nil},
			routesErr: errors.New("network is unreachable"),
			wantCode:  types.ErrInternal, wantRoutes: 1,
		},
		{
			name:     "two IPv4 default routes",
			gws:      [][]net.IP{nil, {net.ParseIP("10.1.1.1")}, {net.ParseIP("10.2.2.1")}},
			wantCode: types.ErrInvalidNetworkConfig,
		},
		{
			name:     "cached result not updated",
			gws:      [][]net.IP{nil, {net.ParseIP("10.1.1.1")}, nil},
			fail:     "SETCACHE blue",
			wantCode: types.ErrIOFailure, wantRoutes: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.routes.err = tt.routesErr
			if tt.fail != "" {
				f.invoker.fail[tt.fail] = errors.New("disk full")
			}
			p := testPlan("c1", "1.0.0")
			for i, gws := range tt.gws {
				p.Attachments[i].DefaultRoute = gws
			}
			_, err := f.attacher.addPlan(context.Background(), p, "1.0.0")
			if te := testutil.CNIError(t, err); te.Code != tt.wantCode {
				t.Errorf("code = %d, want %d (%v)", te.Code, tt.wantCode, te)
			}
			if len(f.routes.calls) != tt.wantRoutes {
				t.Errorf("Routes called %d times, want %d", len(f.routes.calls), tt.wantRoutes)
			}
			if got, want := f.invoker.seen("DEL"), []string{"DEL green net2", "DEL blue net1", "DEL cluster eth0"}; !slices.Equal(got, want) {
				t.Errorf("rollback = %q, want %q", got, want)
			}
			f.assertNoJournal(t, "c1")
			if len(f.recorder.records) != 0 {
				t.Errorf("Record called %d times, want 0", len(f.recorder.records))
			}
		})
	}
}

func TestAddUnsupportedResultVersion(t *testing.T) {
	f := newFixture(t)
	_, err := f.attacher.addPlan(context.Background(), testPlan("c1", "1.0.0"), "0.2.0")
	if te := testutil.CNIError(t, err); te.Code != types.ErrInternal {
		t.Errorf("code = %d, want %d (%v)", te.Code, types.ErrInternal, te)
	}
	if got, want := f.invoker.seen("DEL"), []string{"DEL green net2", "DEL blue net1", "DEL cluster eth0"}; !slices.Equal(got, want) {
		t.Errorf("rollback = %q, want %q", got, want)
	}
	f.assertNoJournal(t, "c1")
}

func TestAddJournalUnwritable(t *testing.T) {
	f := newFixture(t)
	// A file where the journal directory should be.
	file := filepath.Join(t.TempDir(), "not-a-dir")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	f.attacher.Journal = journal.New(file)
	_, err := f.attacher.addPlan(context.Background(), testPlan("c1", "1.0.0"), "1.0.0")
	if te := testutil.CNIError(t, err); te.Code != types.ErrIOFailure || !strings.Contains(te.Msg, "c1") {
		t.Errorf("error = %d %q, want code %d naming the container", te.Code, te.Msg, types.ErrIOFailure)
	}
	if got := f.invoker.seen(); len(got) != 0 {
		t.Errorf("invoker calls = %q, want none before the plan is journaled", got)
	}
}

func TestMergeEvents(t *testing.T) {
	added := func(ifName, network string) podEvent {
		return addedEvent(&plan.Attachment{IfName: ifName, Network: network}, &current.Result{})
	}
	removed := func(ifName, network string) podEvent {
		return removedEvent(&plan.Attachment{IfName: ifName, Network: network})
	}
	many := make([]podEvent, 40)
	for i := range many {
		many[i] = added(fmt.Sprintf("net%d", i+1), "a-namespace-of-some-length/a-network-of-some-length")
	}
	tests := []struct {
		name   string
		events []podEvent
		want   []eventMessage
	}{
		{name: "none"},
		{
			name:   "one interface",
			events: []podEvent{added("eth0", "cluster")},
			want:   []eventMessage{{ReasonAddedInterface, "Add eth0 [] from cluster"}},
		},
		{
			name:   "a hot-plug that replaces: one event per reason, in the order they come",
			events: []podEvent{removed("net1", "ns/a"), removed("net2", "ns/b"), added("net1", "ns/c")},
			want: []eventMessage{
				{ReasonRemovedInterface, "Remove net1 from ns/a, net2 from ns/b"},
				{ReasonAddedInterface, "Add net1 [] from ns/c"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := merge(tt.events); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("merge = %q, want %q", got, tt.want)
			}
		})
	}
	t.Run("too many to list", func(t *testing.T) {
		got := merge(many)
		if len(got) != 1 {
			t.Fatalf("merge = %q, want one event", got)
		}
		msg := got[0].message
		if len(msg) > maxEventMessage || !strings.HasPrefix(msg, "Add net1 [] from ") || !strings.HasSuffix(msg, " more") {
			t.Errorf("message of %d bytes %q, want at most %d starting with net1 and counting the rest", len(msg), msg, maxEventMessage)
		}
		listed := strings.Count(msg, " from ")
		var more int
		if _, err := fmt.Sscanf(msg[strings.LastIndex(msg, ", and ")+len(", and "):], "%d more", &more); err != nil {
			t.Fatalf("no count in %q: %v", msg, err)
		}
		if listed+more != len(many) {
			t.Errorf("%d listed + %d counted, want %d", listed, more, len(many))
		}
	})
}
