package hotplug

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8stypes "k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"

	"github.com/braid-cni/braid/annotations"
	"github.com/braid-cni/braid/journal"
	"github.com/braid-cni/braid/plan"
)

// fakeSync records the containers synced and answers from errs, in turn
// per container (the last answer repeats); nil: success.
type fakeSync struct {
	mu    sync.Mutex
	calls []string
	errs  map[string][]error
	seen  chan string
}

func (f *fakeSync) sync(_ context.Context, id string) (*plan.Change, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, id)
	var err error
	if e := f.errs[id]; len(e) > 0 {
		err = e[0]
		if len(e) > 1 {
			f.errs[id] = e[1:]
		}
	}
	f.seen <- id
	return &plan.Change{Next: &plan.Plan{}}, err
}

func (f *fakeSync) callsSoFar() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

func pod(uid, networks, rv string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p-" + uid, UID: k8stypes.UID(uid), ResourceVersion: rv,
		Annotations: map[string]string{annotations.NetworksKey: networks}}}
}

// setUp journals container c-<uid> for each uid and runs a controller.
func setUp(t *testing.T, f *fakeSync, uids ...string) *Controller {
	t.Helper()
	store := journal.New(t.TempDir())
	for _, uid := range uids {
		p := &plan.Plan{Version: plan.Version, ContainerID: "c-" + uid, IfName: "eth0", Pod: plan.PodRef{Namespace: "ns", Name: "p-" + uid, UID: k8stypes.UID(uid)},
			Attachments: []plan.Attachment{{IfName: "eth0", Network: "cluster", Cluster: true, Config: json.RawMessage(`{"type":"ptp"}`)}}}
		if err := store.Save(p); err != nil {
			t.Fatal(err)
		}
	}
	f.seen = make(chan string, 100)
	c := &Controller{Journal: store, Sync: f.sync,
		Backoff: workqueue.NewTypedItemExponentialFailureRateLimiter[k8stypes.UID](time.Millisecond, 10*time.Millisecond)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx, 2); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return c
}

// next waits for the next Sync of a container.
func (f *fakeSync) next(t *testing.T) string {
	t.Helper()
	select {
	case id := <-f.seen:
		return id
	case <-time.After(10 * time.Second):
		t.Fatal("no Sync")
		return ""
	}
}

// quiet fails if a Sync comes within a while: a state, not a speed, is
// checked; the wait only bounds how long the test looks.
func (f *fakeSync) quiet(t *testing.T) {
	t.Helper()
	select {
	case id := <-f.seen:
		t.Errorf("Sync of %s, want none", id)
	case <-time.After(200 * time.Millisecond):
	}
}

// TestObserve: a pod seen first and a changed annotation sync the pod's
// journaled containers; another field changing does not; a pod braid has
// not attached syncs nothing.
func TestObserve(t *testing.T) {
	f := &fakeSync{}
	c := setUp(t, f, "u1")
	c.Observe(nil, pod("u1", "a", "1"))
	if id := f.next(t); id != "c-u1" {
		t.Errorf("synced %s, want c-u1", id)
	}
	c.Observe(pod("u1", "a", "1"), pod("u1", "a", "2"))
	f.quiet(t)
	c.Observe(pod("u1", "a", "2"), pod("u1", "a, b", "3"))
	if id := f.next(t); id != "c-u1" {
		t.Errorf("synced %s, want c-u1", id)
	}
	c.Observe(nil, pod("u9", "a", "1"))
	f.quiet(t)
}

// TestRetries: code 11 is tried again until it succeeds; any other failure
// is not tried again, even on a resync, until the annotation changes.
func TestRetries(t *testing.T) {
	later := types.NewError(types.ErrTryAgainLater, "network-attachment-definition ns/b not found", "")
	invalid := types.NewError(types.ErrInvalidNetworkConfig, "bad", "")
	f := &fakeSync{errs: map[string][]error{"c-u1": {later, later, nil}, "c-u2": {invalid}}}
	c := setUp(t, f, "u1", "u2")

	c.Observe(nil, pod("u1", "a, b", "1"))
	for range 3 {
		f.next(t)
	}
	f.quiet(t)
	if got := f.callsSoFar(); !slices.Equal(got, []string{"c-u1", "c-u1", "c-u1"}) {
		t.Errorf("syncs %q, want three of c-u1 (two code 11, then success)", got)
	}

	c.Observe(nil, pod("u2", "x", "1"))
	f.next(t)
	f.quiet(t)
	c.Observe(pod("u2", "x", "1"), pod("u2", "x", "1")) // resync
	f.quiet(t)
	f.errs["c-u2"] = []error{nil}
	c.Observe(pod("u2", "x", "1"), pod("u2", "y", "2"))
	if id := f.next(t); id != "c-u2" {
		t.Errorf("after the annotation changed: synced %s, want c-u2", id)
	}
	if n := len(f.callsSoFar()); n != 5 {
		t.Errorf("%d syncs in all, want 5", n)
	}
}

// TestSyncErrorJoinsContainers: every container of a pod is synced even
// when one fails.
func TestSyncErrorJoinsContainers(t *testing.T) {
	f := &fakeSync{errs: map[string][]error{}}
	c := setUp(t, f)
	store := c.Journal.(*journal.Store)
	for _, id := range []string{"a", "b"} {
		p := &plan.Plan{Version: plan.Version, ContainerID: id, IfName: "eth0", Pod: plan.PodRef{Namespace: "ns", Name: "p", UID: "u"},
			Attachments: []plan.Attachment{{IfName: "eth0", Network: "cluster", Cluster: true, Config: json.RawMessage(`{"type":"ptp"}`)}}}
		if err := store.Save(p); err != nil {
			t.Fatal(err)
		}
	}
	f.errs["a"] = []error{errors.New("boom")}
	if err := c.reconcile(context.Background(), "u"); err == nil || err.Error() != "boom" {
		t.Errorf("reconcile = %v, want a's error", err)
	}
	if got := f.callsSoFar(); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("synced %q, want a and b", got)
	}
}

// TestForget: nothing is kept of a deleted pod, so a pod of the same UID
// seen again (it cannot be, but a failed value must not outlive its pod)
// is synced afresh.
func TestForget(t *testing.T) {
	invalid := types.NewError(types.ErrInvalidNetworkConfig, "bad", "")
	f := &fakeSync{errs: map[string][]error{"c-u1": {invalid, nil}}}
	c := setUp(t, f, "u1")
	c.Observe(nil, pod("u1", "x", "1"))
	f.next(t)
	f.quiet(t)
	c.mu.Lock()
	failed, wanted := len(c.failed), len(c.wanted)
	c.mu.Unlock()
	if failed != 1 || wanted != 1 {
		t.Fatalf("after a failure: %d failed, %d wanted; want 1 and 1", failed, wanted)
	}
	c.Forget(pod("u1", "x", "1"))
	c.mu.Lock()
	failed, wanted = len(c.failed), len(c.wanted)
	c.mu.Unlock()
	if failed != 0 || wanted != 0 {
		t.Errorf("after Forget: %d failed, %d wanted; want none", failed, wanted)
	}
	c.Observe(nil, pod("u1", "x", "1"))
	if id := f.next(t); id != "c-u1" {
		t.Errorf("synced %s, want c-u1", id)
	}
}

// countingJournal counts the entries loaded.
type countingJournal struct {
	*journal.Store
	loads int
}

func (j *countingJournal) Load(id string) (*plan.Plan, error) {
	j.loads++
	return j.Store.Load(id)
}

// TestContainersLoadsNewEntriesOnly: a pod's change loads the journal
// entries not seen before, not every entry of the node each time; an
// entry deleted is forgotten.
func TestContainersLoadsNewEntriesOnly(t *testing.T) {
	store := journal.New(t.TempDir())
	save := func(id string, uid k8stypes.UID) {
		t.Helper()
		p := &plan.Plan{Version: plan.Version, ContainerID: id, IfName: "eth0", Pod: plan.PodRef{Namespace: "ns", Name: "p", UID: uid},
			Attachments: []plan.Attachment{{IfName: "eth0", Network: "cluster", Cluster: true, Config: json.RawMessage(`{"type":"ptp"}`)}}}
		if err := store.Save(p); err != nil {
			t.Fatal(err)
		}
	}
	save("c1", "a")
	save("c2", "b")
	save("c3", "a")
	j := &countingJournal{Store: store}
	c := &Controller{Journal: j}
	c.init()
	for i, want := range []int{3, 0} {
		ids, err := c.containers("a")
		if err != nil || !slices.Equal(ids, []string{"c1", "c3"}) {
			t.Fatalf("pass %d: containers of a = %v, %v; want c1, c3", i, ids, err)
		}
		if j.loads != want {
			t.Errorf("pass %d: %d entries loaded, want %d", i, j.loads, want)
		}
		j.loads = 0
	}
	save("c4", "a")
	if err := store.Remove("c1"); err != nil {
		t.Fatal(err)
	}
	ids, err := c.containers("a")
	if err != nil || !slices.Equal(ids, []string{"c3", "c4"}) || j.loads != 1 {
		t.Errorf("after c4 came and c1 went: containers of a = %v, %v, %d loads; want c3, c4 and one load", ids, err, j.loads)
	}
	if _, ok := c.owners["c1"]; ok {
		t.Error("the deleted entry c1 is still remembered")
	}
}
