package attacher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/braid-cni/braid/delegate"
	"github.com/braid-cni/braid/internal/testutil"
	"github.com/braid-cni/braid/plan"
)

var allDels = []string{"DEL green net2", "DEL blue net1", "DEL cluster eth0"}

// added runs a successful ADD of testPlan(id) and forgets its calls.
func added(t *testing.T, f *fixture, id string) *plan.Plan {
	t.Helper()
	p := testPlan(id, "1.0.0")
	if _, err := f.attacher.addPlan(context.Background(), p, "1.0.0"); err != nil {
		t.Fatalf("Add %s: %v", id, err)
	}
	f.invoker.reset()
	return p
}

func TestDel(t *testing.T) {
	tests := []struct {
		name  string
		netns string // what the runtime passes on DEL
		// crashed empties the journal's completed record, as a crash of
		// the node may leave it (it is never synced): DEL works from the
		// intent, which names every attachment.
		crashed bool
	}{
		{name: "netns still there", netns: "/var/run/netns/c1"},
		{name: "netns already gone"},
		{name: "completed record lost in a crash", crashed: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			added(t, f, "c1")
			// The journal keeps completed records in .completed/<id>.
			completed := filepath.Join(f.journal.Dir, ".completed", "c1")
			if tt.crashed {
				if err := os.Truncate(completed, 0); err != nil {
					t.Fatal(err)
				}
			}
			p, err := f.journal.Load("c1")
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if got := len(p.Attachments[0].Result) > 0; got == tt.crashed {
				t.Errorf("loaded plan has results: %v, want %v", got, !tt.crashed)
			}
			if err := f.attacher.delPlan(context.Background(), p, tt.netns); err != nil {
				t.Fatalf("Del: %v", err)
			}
			if got := f.invoker.seen(); !slices.Equal(got, allDels) {
				t.Errorf("invoker calls = %q, want %q", got, allDels)
			}
			for _, c := range f.invoker.calls {
				if c.containerID != "c1" || c.netns != tt.netns {
					t.Errorf("%s: container %q netns %q, want c1 %q", c, c.containerID, c.netns, tt.netns)
				}
			}
			f.assertNoJournal(t, "c1")
			if _, err := os.Stat(completed); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("completed record after DEL: %v, want it removed", err)
			}
		})
	}
}

func TestDelGoesOnPastFailures(t *testing.T) {
	tests := []struct {
		name     string
		fail     map[string]error
		wantCode uint
		wantMsg  []string
		notInMsg []string
	}{
		{
			name:     "one network",
			fail:     map[string]error{"DEL blue": delegateError("macvlan", types.ErrTryAgainLater, "netns busy")},
			wantCode: types.ErrTryAgainLater,
			wantMsg:  []string{"ns1/blue", "macvlan", "net1", "netns busy"},
			notInMsg: []string{"ns1/green", "network cluster"},
		},
		{
			name: "two networks",
			fail: map[string]error{
				"DEL green":   delegateError("bridge", types.ErrIOFailure, "cannot write"),
				"DEL cluster": delegateError("ptp", types.ErrTryAgainLater, "ipam busy"),
			},
			// green is deleted first, so its code wins.
			wantCode: types.ErrIOFailure,
			wantMsg:  []string{"c1", "2 networks failed", "ns1/green", "bridge", "cannot write", "network cluster", "ptp", "ipam busy"},
			notInMsg: []string{"ns1/blue"},
		},
		{
			name: "every network",
			fail: map[string]error{
				"DEL green":   delegateError("bridge", types.ErrDecodingFailure, "e1"),
				"DEL blue":    delegateError("macvlan", types.ErrTryAgainLater, "e2"),
				"DEL cluster": delegateError("ptp", types.ErrIOFailure, "e3"),
			},
			wantCode: types.ErrDecodingFailure,
			wantMsg:  []string{"3 networks failed", "ns1/green", "ns1/blue", "network cluster", "e1", "e2", "e3"},
		},
		{
			name: "a refused config does not count",
			fail: map[string]error{
				"DEL green": delegateError("bridge", types.ErrInvalidNetworkConfig, "e1"),
				"DEL blue":  delegateError("macvlan", types.ErrTryAgainLater, "e2"),
			},
			wantCode: types.ErrTryAgainLater,
			wantMsg:  []string{"ns1/blue", "e2"},
			notInMsg: []string{"ns1/green", "e1", "networks failed"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			p := added(t, f, "c1")
			f.invoker.fail = tt.fail
			err := f.attacher.delPlan(context.Background(), p, p.NetNS)
			te := testutil.CNIError(t, err)
			if te.Code != tt.wantCode {
				t.Errorf("code = %d, want %d (%v)", te.Code, tt.wantCode, te)
			}
			for _, s := range tt.wantMsg {
				if !strings.Contains(te.Msg, s) {
					t.Errorf("message %q does not contain %q", te.Msg, s)
				}
			}
			for _, s := range tt.notInMsg {
				if strings.Contains(te.Msg, s) {
					t.Errorf("message %q names %q, which did not fail", te.Msg, s)
				}
			}
			if got := f.invoker.seen(); !slices.Equal(got, allDels) {
				t.Errorf("invoker calls = %q, want %q", got, allDels)
			}
			// The runtime retries DEL; it must find the same plan.
			if j := f.journaled(t, "c1"); len(j.Attachments) != 3 {
				t.Errorf("journal holds %d attachments, want 3", len(j.Attachments))
			}
		})
	}
}

// A delegate that refuses its config at DEL (wrong version, bad config,
// plugin not installed) cannot have attached anything with it; a DEL that
// failed on it would fail on every retry.
func TestDelRefusedConfigIsSuccess(t *testing.T) {
	for _, code := range []uint{types.ErrIncompatibleCNIVersion, types.ErrUnsupportedField, types.ErrInvalidNetworkConfig} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			f := newFixture(t)
			p := added(t, f, "c1")
			f.invoker.fail = map[string]error{"DEL blue": delegateError("macvlan", code, "refused")}
			if err := f.attacher.delPlan(context.Background(), p, p.NetNS); err != nil {
				t.Fatalf("Del: %v", err)
			}
			if got := f.invoker.seen(); !slices.Equal(got, allDels) {
				t.Errorf("invoker calls = %q, want %q", got, allDels)
			}
			f.assertNoJournal(t, "c1")
		})
	}
}

func TestDelTwice(t *testing.T) {
	f := newFixture(t)
	p := added(t, f, "c1")
	for i := 0; i < 2; i++ {
		if err := f.attacher.delPlan(context.Background(), p, p.NetNS); err != nil {
			t.Fatalf("Del %d: %v", i+1, err)
		}
	}
	want := append(slices.Clone(allDels), allDels...)
	if got := f.invoker.seen(); !slices.Equal(got, want) {
		t.Errorf("invoker calls = %q, want %q", got, want)
	}
	f.assertNoJournal(t, "c1")
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name      string
		mutate    func(p *plan.Plan)
		fail      map[string]error
		wantCalls []string
		wantCode  uint // 0: no error
		wantMsg   []string
	}{
		{
			name:      "all fine",
			wantCalls: []string{"CHECK cluster eth0", "CHECK blue net1", "CHECK green net2"},
		},
		{
			name:      "no journaled result",
			mutate:    func(p *plan.Plan) { p.Attachments[1].Result = nil },
			wantCalls: []string{"CHECK cluster eth0"},
			wantCode:  types.ErrInvalidNetworkConfig,
			wantMsg:   []string{"ns1/blue", "net1", "no result"},
		},
		{
			name:      "delegate reports a problem",
			fail:      map[string]error{"CHECK green": delegateError("bridge", types.ErrTryAgainLater, "address missing")},
			wantCalls: []string{"CHECK cluster eth0", "CHECK blue net1", "CHECK green net2"},
			wantCode:  types.ErrTryAgainLater,
			wantMsg:   []string{"ns1/green", "bridge", "net2", "address missing"},
		},
		{
			name: "config that does not load",
			mutate: func(p *plan.Plan) {
				p.Attachments[0].Config = json.RawMessage(`{"cniVersion":"1.0.0","name":"cluster"}`)
			},
			wantCode: types.ErrInvalidNetworkConfig,
			wantMsg:  []string{"network cluster", "eth0"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			added(t, f, "c1")
			p, err := f.journal.Load("c1")
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if tt.mutate != nil {
				tt.mutate(p)
			}
			if tt.fail != nil {
				f.invoker.fail = tt.fail
			}
			err = f.attacher.checkPlan(context.Background(), p, p.NetNS)
			if got := f.invoker.seen(); !slices.Equal(got, tt.wantCalls) {
				t.Errorf("invoker calls = %q, want %q", got, tt.wantCalls)
			}
			if tt.wantCode == 0 {
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
				return
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
		})
	}
}

func TestCheckPlanNeverAdded(t *testing.T) {
	f := newFixture(t)
	// A plan journaled before ADD ran has no results at all.
	err := f.attacher.checkPlan(context.Background(), testPlan("c1", "1.0.0"), "/var/run/netns/c1")
	if te := testutil.CNIError(t, err); te.Code != types.ErrInvalidNetworkConfig || !strings.Contains(te.Msg, "network cluster") {
		t.Errorf("error = %d %q, want code 7 naming the cluster network", te.Code, te.Msg)
	}
	if got := f.invoker.seen(); len(got) != 0 {
		t.Errorf("invoker calls = %q, want none", got)
	}
}

func TestStatus(t *testing.T) {
	tests := []struct {
		name     string
		fail     map[string]error
		wantCode uint
	}{
		{name: "ready"},
		{
			name:     "cluster network not ready",
			fail:     map[string]error{"STATUS cluster": delegateError("ptp", 50, "plugin not available")},
			wantCode: 50,
		},
		{
			// A secondary network that is not ready does not matter:
			// STATUS is about the cluster network alone.
			name: "secondary network not ready",
			fail: map[string]error{"STATUS blue": delegateError("macvlan", 50, "not available")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.invoker.fail = tt.fail
			err := f.attacher.statusPlan(context.Background(), testPlan("c1", "1.1.0"))
			if got, want := f.invoker.seen(), []string{"STATUS cluster "}; !slices.Equal(got, want) {
				t.Errorf("invoker calls = %q, want %q", got, want)
			}
			if tt.wantCode == 0 {
				if err != nil {
					t.Fatalf("Status: %v", err)
				}
				return
			}
			te := testutil.CNIError(t, err)
			if te.Code != tt.wantCode || !strings.Contains(te.Msg, "network cluster") || !strings.Contains(te.Msg, "ptp") {
				t.Errorf("error = %d %q, want code %d naming network cluster and plugin ptp", te.Code, te.Msg, tt.wantCode)
			}
		})
	}
}

// A plugin missing at DEL is nothing to delete only for an attachment that
// never got a result; one that was attached keeps the journal for a retry.
func TestDelPluginNotInstalled(t *testing.T) {
	missing := &delegate.Error{Plugin: "macvlan", NotInstalled: true, Err: types.NewError(types.ErrInvalidNetworkConfig, `plugin "macvlan" not found`, "")}
	tests := []struct {
		name     string
		attached bool
		wantErr  bool
	}{
		{name: "attached: an error, journal kept", attached: true, wantErr: true},
		{name: "never attached: success", attached: false, wantErr: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			p := added(t, f, "c1")
			if !tt.attached {
				for i := range p.Attachments {
					p.Attachments[i].Result = nil
				}
			}
			f.invoker.fail = map[string]error{"DEL blue": missing}
			err := f.attacher.delPlan(context.Background(), p, p.NetNS)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Del error = %v, want error %v", err, tt.wantErr)
			}
			if got := f.invoker.seen(); !slices.Equal(got, allDels) {
				t.Errorf("invoker calls = %q, want %q", got, allDels)
			}
			if _, err := f.journal.Load("c1"); (err == nil) != tt.wantErr {
				t.Errorf("journal entry present = %v, want %v", err == nil, tt.wantErr)
			}
		})
	}
}

// TestJoinCNIBounded: many failed networks give a bounded message, the
// rest counted, the first code kept.
func TestJoinCNIBounded(t *testing.T) {
	var errs []*types.Error
	for i := range 1000 {
		errs = append(errs, types.NewError(uint(11+i%2), fmt.Sprintf("network ns/n%d (plugin bridge, interface net%d): boom", i, i), "details"))
	}
	te := testutil.CNIError(t, joinCNI("DEL", "c1", errs))
	if te.Code != 11 {
		t.Errorf("code = %d, want the first's", te.Code)
	}
	if n := len(te.Msg); n > maxJoinedMessage+256 {
		t.Errorf("message is %d bytes", n)
	}
	if !strings.Contains(te.Msg, "1000 networks failed") || !strings.Contains(te.Msg, "ns/n0 ") || !strings.Contains(te.Msg, " more") {
		t.Errorf("message %q does not count the networks, start with the first and count the rest", te.Msg[:200])
	}
	one := testutil.CNIError(t, joinCNI("DEL", "c1", []*types.Error{types.NewError(7, strings.Repeat("x", 10000), "")}))
	if len(one.Msg) != 10000 {
		t.Errorf("a single error was cut to %d bytes", len(one.Msg))
	}
}
