package attacher

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/braid-cni/braid/internal/testutil"
	"github.com/braid-cni/braid/lock"
	"github.com/braid-cni/braid/plan"
)

// gcCall is a GC the invoker saw, with its valid list.
type gcCall struct {
	network string
	valid   []types.GCAttachment
}

func gcCalls(f *fakeInvoker) []gcCall {
	var out []gcCall
	for _, c := range f.callsOf("GC") {
		out = append(out, gcCall{c.network, c.valid})
	}
	return out
}

// delsOf lists the DEL calls for one container.
func delsOf(f *fakeInvoker, id string) []string {
	var out []string
	for _, c := range f.callsOf("DEL") {
		if c.containerID == id {
			out = append(out, c.String())
		}
	}
	return out
}

func TestGC(t *testing.T) {
	validA := []types.GCAttachment{{ContainerID: "ca", IfName: "eth0"}}
	onlyA := func(ifName string) []types.GCAttachment {
		return []types.GCAttachment{{ContainerID: "ca", IfName: ifName}}
	}
	tests := []struct {
		name      string
		valid     []types.GCAttachment
		corrupt   []string // journal entries that do not decode
		extraB    bool     // B also has network red on net3
		fail      map[string]error
		wantGone  []string
		wantKept  []string
		wantDels  map[string][]string // by container
		wantGC    []gcCall
		wantCode  uint // 0: no error
		wantInMsg []string
	}{
		{
			name:     "B is gone",
			valid:    validA,
			wantGone: []string{"cb"},
			wantKept: []string{"ca"},
			wantDels: map[string][]string{"ca": nil, "cb": allDels},
			wantGC:   []gcCall{{"cluster", onlyA("eth0")}, {"blue", onlyA("net1")}, {"green", onlyA("net2")}},
		},
		{
			name:     "both gone",
			valid:    nil,
			wantGone: []string{"ca", "cb"},
			wantDels: map[string][]string{"ca": allDels, "cb": allDels},
			wantGC:   []gcCall{{"cluster", nil}, {"blue", nil}, {"green", nil}},
		},
		{
			name:     "both valid",
			valid:    []types.GCAttachment{{ContainerID: "ca", IfName: "eth0"}, {ContainerID: "cb", IfName: "eth0"}},
			wantKept: []string{"ca", "cb"},
			wantDels: map[string][]string{"ca": nil, "cb": nil},
			wantGC: []gcCall{
				{"cluster", []types.GCAttachment{{ContainerID: "ca", IfName: "eth0"}, {ContainerID: "cb", IfName: "eth0"}}},
				{"blue", []types.GCAttachment{{ContainerID: "ca", IfName: "net1"}, {ContainerID: "cb", IfName: "net1"}}},
				{"green", []types.GCAttachment{{ContainerID: "ca", IfName: "net2"}, {ContainerID: "cb", IfName: "net2"}}},
			},
		},
		{
			name:     "network only B used",
			valid:    validA,
			extraB:   true,
			wantGone: []string{"cb"},
			wantKept: []string{"ca"},
			wantDels: map[string][]string{"cb": append([]string{"DEL red net3"}, allDels...)},
			wantGC:   []gcCall{{"cluster", onlyA("eth0")}, {"blue", onlyA("net1")}, {"green", onlyA("net2")}, {"red", nil}},
		},
		{
			name:     "corrupt entry of a container that is gone",
			valid:    validA,
			corrupt:  []string{"cz"},
			wantGone: []string{"cb"},
			wantKept: []string{"ca", "cz"}, // left for doctor
			wantDels: map[string][]string{"cb": allDels, "cz": nil},
			wantGC:   []gcCall{{"cluster", onlyA("eth0")}, {"blue", onlyA("net1")}, {"green", onlyA("net2")}},
		},
		{
			// braid cannot tell which attachments of cz are live, so no
			// delegate may be told that only A's are.
			name:     "corrupt entry of a valid container",
			valid:    append(slices.Clone(validA), types.GCAttachment{ContainerID: "cz", IfName: "eth0"}),
			corrupt:  []string{"cz"},
			wantGone: []string{"cb"},
			wantKept: []string{"ca", "cz"},
			wantDels: map[string][]string{"cb": allDels, "cz": nil},
			wantGC:   nil,
		},
		{
			name:      "DEL of B fails",
			valid:     validA,
			fail:      map[string]error{"DEL blue": delegateError("macvlan", types.ErrTryAgainLater, "busy")},
			wantKept:  []string{"ca", "cb"}, // retried by the next GC
			wantDels:  map[string][]string{"cb": allDels},
			wantGC:    []gcCall{{"cluster", onlyA("eth0")}, {"blue", onlyA("net1")}, {"green", onlyA("net2")}},
			wantCode:  types.ErrTryAgainLater,
			wantInMsg: []string{"ns1/blue", "macvlan", "busy"},
		},
		{
			name:      "GC of a network fails",
			valid:     validA,
			fail:      map[string]error{"GC blue": delegateError("macvlan", types.ErrIOFailure, "gc failed")},
			wantGone:  []string{"cb"},
			wantKept:  []string{"ca"},
			wantDels:  map[string][]string{"cb": allDels},
			wantGC:    []gcCall{{"cluster", onlyA("eth0")}, {"blue", onlyA("net1")}, {"green", onlyA("net2")}},
			wantCode:  types.ErrIOFailure,
			wantInMsg: []string{"ns1/blue", "macvlan", "gc failed"},
		},
		{
			name:     "GC of a network and DEL of B fail",
			valid:    validA,
			fail:     map[string]error{"DEL cluster": delegateError("ptp", types.ErrTryAgainLater, "e1"), "GC green": delegateError("bridge", types.ErrIOFailure, "e2")},
			wantKept: []string{"ca", "cb"},
			wantDels: map[string][]string{"cb": allDels},
			wantGC:   []gcCall{{"cluster", onlyA("eth0")}, {"blue", onlyA("net1")}, {"green", onlyA("net2")}},
			// The DEL failed first.
			wantCode:  types.ErrTryAgainLater,
			wantInMsg: []string{"2 networks failed", "network cluster", "e1", "ns1/green", "e2"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			added(t, f, "ca")
			if tt.extraB {
				p := testPlan("cb", "1.0.0")
				p.Attachments = append(p.Attachments, plan.Attachment{IfName: "net3", Network: "ns1/red", Config: conf("1.0.0", "red", "ipvlan")})
				f.invoker.results["red"] = greenResult
				if _, err := f.attacher.addPlan(context.Background(), p, "1.0.0"); err != nil {
					t.Fatalf("Add cb: %v", err)
				}
			} else {
				added(t, f, "cb")
			}
			for _, id := range tt.corrupt {
				if err := f.journal.Write(id, []byte(`{"version":1,"containerID":`)); err != nil {
					t.Fatal(err)
				}
			}
			f.invoker.reset()
			if tt.fail != nil {
				f.invoker.fail = tt.fail
			}

			err := f.attacher.GC(context.Background(), Request{Valid: tt.valid})

			if tt.wantCode == 0 && err != nil {
				t.Fatalf("GC: %v", err)
			}
			if tt.wantCode != 0 {
				te := testutil.CNIError(t, err)
				if te.Code != tt.wantCode {
					t.Errorf("code = %d, want %d (%v)", te.Code, tt.wantCode, te)
				}
				for _, s := range tt.wantInMsg {
					if !strings.Contains(te.Msg, s) {
						t.Errorf("message %q does not contain %q", te.Msg, s)
					}
				}
			}
			for id, want := range tt.wantDels {
				if got := delsOf(f.invoker, id); !slices.Equal(got, want) {
					t.Errorf("DEL calls for %s = %q, want %q", id, got, want)
				}
			}
			// GC comes after every DEL.
			calls := f.invoker.seen("DEL", "GC")
			if i := slices.IndexFunc(calls, func(s string) bool { return strings.HasPrefix(s, "GC") }); i >= 0 {
				for _, c := range calls[i:] {
					if strings.HasPrefix(c, "DEL") {
						t.Errorf("%s after a GC: calls %q", c, calls)
					}
				}
			}
			if got := gcCalls(f.invoker); !reflect.DeepEqual(got, tt.wantGC) {
				t.Errorf("GC calls =\n%+v\nwant\n%+v", got, tt.wantGC)
			}
			for _, id := range tt.wantGone {
				f.assertNoJournal(t, id)
			}
			for _, id := range tt.wantKept {
				if _, err := f.journal.Read(id); err != nil {
					t.Errorf("journal entry %s: %v, want it kept", id, err)
				}
			}
		})
	}
}

func TestGCEmptyJournal(t *testing.T) {
	f := newFixture(t)
	if err := f.attacher.GC(context.Background(), Request{Valid: nil}); err != nil {
		t.Fatalf("GC: %v", err)
	}
	if got := f.invoker.seen(); len(got) != 0 {
		t.Errorf("invoker calls = %q, want none", got)
	}
}

// TestGCTakesTheContainersLock: GC deletes a container only under its lock,
// so it never runs between a runtime verb's steps; a container deleted
// meanwhile is done, and its lock file goes with it.
func TestGCTakesTheContainersLock(t *testing.T) {
	f := newFixture(t)
	f.attacher.Locks = lock.Dir(t.TempDir())
	added(t, f, "c1")
	added(t, f, "c2")
	held, err := f.attacher.Locks.Lock(context.Background(), "c1") // a runtime verb of c1 runs
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- f.attacher.GC(context.Background(), Request{Valid: nil}) }()
	select {
	case err := <-done:
		t.Fatalf("GC returned (%v) while c1's lock was held", err)
	case <-time.After(50 * time.Millisecond):
	}
	if got := delsOf(f.invoker, "c1"); len(got) != 0 {
		t.Fatalf("GC deleted c1 under another verb's lock: %q", got)
	}
	// That verb was the runtime's DEL: c1 is gone when GC gets the lock.
	if err := f.journal.Remove("c1"); err != nil {
		t.Fatal(err)
	}
	held.Unlock()
	if err := <-done; err != nil {
		t.Fatalf("GC: %v", err)
	}
	if got := delsOf(f.invoker, "c1"); len(got) != 0 {
		t.Errorf("GC deleted c1 again: %q", got)
	}
	if got := delsOf(f.invoker, "c2"); !slices.Equal(got, allDels) {
		t.Errorf("c2's DELs = %q, want %q", got, allDels)
	}
	for _, id := range []string{"c1", "c2"} {
		if _, err := os.Stat(filepath.Join(string(f.attacher.Locks), id)); !os.IsNotExist(err) {
			t.Errorf("lock file of %s: %v, want removed", id, err)
		}
	}
}

// TestGCLockWaitBounded: a lock held past GC's deadline is try-again-later.
func TestGCLockWaitBounded(t *testing.T) {
	f := newFixture(t)
	f.attacher.Locks = lock.Dir(t.TempDir())
	added(t, f, "c1")
	held, err := f.attacher.Locks.Lock(context.Background(), "c1")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if te := testutil.CNIError(t, f.attacher.GC(ctx, Request{Valid: nil})); te.Code != types.ErrTryAgainLater || !strings.Contains(te.Msg, "c1") {
		t.Errorf("GC = %+v, want code 11 naming c1", te)
	}
	if _, err := f.journal.Read("c1"); err != nil {
		t.Errorf("c1's journal entry: %v, want it kept", err)
	}
}
