package status

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/util/workqueue"
)

// queueFixture is a Queue on a fake clientset holding pod ns/p, with its
// workers running until the test ends.
type queueFixture struct {
	client  *fake.Clientset
	queue   *Queue
	patches atomic.Int32
	stop    context.CancelFunc
	stopped chan struct{}

	mu     sync.Mutex
	bodies []string // the PATCHes' bodies, in order
}

// newQueueFixture runs the queue; react, when set, answers each PATCH
// before the fake's object tracker does (return handled=false to pass).
func newQueueFixture(t *testing.T, react func(n int32) (bool, error)) *queueFixture {
	t.Helper()
	f := newIdleQueueFixture(t, react)
	f.start(t)
	return f
}

// newIdleQueueFixture is newQueueFixture without the workers: what is
// recorded stays queued until start.
func newIdleQueueFixture(t *testing.T, react func(n int32) (bool, error)) *queueFixture {
	t.Helper()
	f := &queueFixture{client: fake.NewSimpleClientset(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns"}}), stopped: make(chan struct{})}
	f.client.PrependReactor("patch", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		n := f.patches.Add(1)
		f.mu.Lock()
		f.bodies = append(f.bodies, string(a.(k8stesting.PatchAction).GetPatch()))
		f.mu.Unlock()
		if react == nil {
			return false, nil, nil
		}
		handled, err := react(n)
		return handled, nil, err
	})
	f.queue = newQueue(&Writer{Client: f.client, Component: "braidd", Node: "node1"}, slog.New(slog.NewTextHandler(io.Discard, nil)),
		workqueue.NewTypedItemExponentialFailureRateLimiter[string](time.Millisecond, 10*time.Millisecond))
	return f
}

// start runs the queue's workers until the test ends.
func (f *queueFixture) start(t *testing.T) {
	ctx, stop := context.WithCancel(context.Background())
	f.stop = stop
	go func() {
		defer close(f.stopped)
		f.queue.Run(ctx, 2, 5*time.Second)
	}()
	t.Cleanup(f.shutDown)
}

func (f *queueFixture) shutDown() {
	f.stop()
	<-f.stopped
}

func statusOn(ifName string) []nadv1.NetworkStatus {
	return []nadv1.NetworkStatus{{Name: "cluster", Interface: ifName, IPs: []string{"10.0.0.2"}, Default: true}}
}

// waitWritten waits until nothing is pending and returns the pod's status.
func (f *queueFixture) waitWritten(t *testing.T) []nadv1.NetworkStatus {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); f.queue.Pending() != 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("still %d pending", f.queue.Pending())
		}
	}
	pod, err := f.client.CoreV1().Pods("ns").Get(context.Background(), "p", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	raw, ok := pod.Annotations[nadv1.NetworkStatusAnnot]
	if !ok {
		return nil
	}
	var got []nadv1.NetworkStatus
	if err := json.Unmarshal([]byte(raw), &got); err != nil {
		t.Fatal(err)
	}
	return got
}

func TestQueueWrites(t *testing.T) {
	f := newQueueFixture(t, nil)
	if err := f.queue.Record(context.Background(), PodRef{Namespace: "ns", Name: "p"}, statusOn("eth0")); err != nil {
		t.Fatal(err)
	}
	if got := f.waitWritten(t); len(got) != 1 || got[0].Interface != "eth0" {
		t.Errorf("status written = %+v", got)
	}
	if n := f.patches.Load(); n != 1 {
		t.Errorf("%d PATCHes, want 1", n)
	}
}

// TestQueueLastWins: statuses queued while one is being written collapse
// into one more write, of the last.
func TestQueueLastWins(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	entered := make(chan struct{})
	f := newQueueFixture(t, func(n int32) (bool, error) {
		if n == 1 {
			once.Do(func() { close(entered) })
			<-release
		}
		return false, nil
	})
	ref := PodRef{Namespace: "ns", Name: "p"}
	_ = f.queue.Record(context.Background(), ref, statusOn("first"))
	<-entered
	for _, ifName := range []string{"second", "third", "last"} {
		_ = f.queue.Record(context.Background(), ref, statusOn(ifName))
	}
	if f.queue.Pending() != 1 {
		t.Errorf("Pending = %d while writing, want 1 pod", f.queue.Pending())
	}
	close(release)
	if got := f.waitWritten(t); len(got) != 1 || got[0].Interface != "last" {
		t.Errorf("status written = %+v, want the last", got)
	}
	if n := f.patches.Load(); n != 2 {
		t.Errorf("%d PATCHes, want 2 (the one in flight, then the last)", n)
	}
}

// TestQueueRetries: a failing API server is retried until it takes the write.
func TestQueueRetries(t *testing.T) {
	f := newQueueFixture(t, func(n int32) (bool, error) {
		if n <= 3 {
			return true, apierrors.NewServiceUnavailable("etcd leader changed")
		}
		return false, nil
	})
	_ = f.queue.Record(context.Background(), PodRef{Namespace: "ns", Name: "p"}, statusOn("eth0"))
	if got := f.waitWritten(t); len(got) != 1 || got[0].Interface != "eth0" {
		t.Errorf("status written = %+v", got)
	}
	if n := f.patches.Load(); n != 4 {
		t.Errorf("%d PATCHes, want 3 failures and 1 success", n)
	}
}

// TestQueueGivesUp: a write that never succeeds is dropped after
// maxAttempts, and a pod that is gone after the first.
func TestQueueGivesUp(t *testing.T) {
	t.Run("gone", func(t *testing.T) {
		f := newQueueFixture(t, nil)
		_ = f.queue.Record(context.Background(), PodRef{Namespace: "ns", Name: "gone"}, statusOn("eth0"))
		f.waitWritten(t)
		if n := f.patches.Load(); n != 1 {
			t.Errorf("%d PATCHes of a missing pod, want 1", n)
		}
	})
	// The API server refuses the write when the pod of that name has
	// another UID: the pod this status was for is gone too.
	t.Run("recreated", func(t *testing.T) {
		f := newQueueFixture(t, func(int32) (bool, error) { return true, uidRefused() })
		_ = f.queue.Record(context.Background(), PodRef{Namespace: "ns", Name: "p", UID: "old"}, statusOn("eth0"))
		if got := f.waitWritten(t); got != nil {
			t.Errorf("status written = %+v, want none", got)
		}
		if n := f.patches.Load(); n != 1 {
			t.Errorf("%d PATCHes of a recreated pod, want 1", n)
		}
	})
	t.Run("always failing", func(t *testing.T) {
		f := newQueueFixture(t, func(int32) (bool, error) { return true, errors.New("connection refused") })
		_ = f.queue.Record(context.Background(), PodRef{Namespace: "ns", Name: "p"}, statusOn("eth0"))
		if got := f.waitWritten(t); got != nil {
			t.Errorf("status written = %+v, want none", got)
		}
		if n := f.patches.Load(); n != maxAttempts {
			t.Errorf("%d PATCHes, want %d", n, maxAttempts)
		}
	})
}

// TestQueueDrains: what is queued when the daemon stops is still written:
// the write in flight, then the newer status queued behind it.
func TestQueueDrains(t *testing.T) {
	release, entered := make(chan struct{}), make(chan struct{})
	var once sync.Once
	f := newQueueFixture(t, func(n int32) (bool, error) {
		if n == 1 {
			once.Do(func() { close(entered) })
			<-release
		}
		return false, nil
	})
	ref := PodRef{Namespace: "ns", Name: "p"}
	_ = f.queue.Record(context.Background(), ref, statusOn("first"))
	<-entered
	_ = f.queue.Record(context.Background(), ref, statusOn("last"))
	f.stop()
	close(release)
	<-f.stopped
	if f.queue.Pending() != 0 {
		t.Fatalf("Pending = %d after shutdown", f.queue.Pending())
	}
	if got := f.waitWritten(t); len(got) != 1 || got[0].Interface != "last" {
		t.Errorf("status after shutdown = %+v, want the last", got)
	}
}

// TestQueueKeysByUID: the statuses of two pods with one name and different
// UIDs (a pod and the one that replaced it) are both queued and both
// written, each with its own UID, instead of the later replacing the
// earlier; the API server then refuses the one whose pod is gone.
func TestQueueKeysByUID(t *testing.T) {
	f := newIdleQueueFixture(t, nil)
	ctx := context.Background()
	_ = f.queue.Record(ctx, PodRef{Namespace: "ns", Name: "p", UID: "old"}, statusOn("old"))
	_ = f.queue.Record(ctx, PodRef{Namespace: "ns", Name: "p", UID: "new"}, statusOn("new"))
	if n := f.queue.Pending(); n != 2 {
		t.Errorf("Pending = %d, want 2 pods", n)
	}
	f.start(t)
	f.waitWritten(t)
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.bodies) != 2 {
		t.Fatalf("PATCHes %q, want one per UID", f.bodies)
	}
	for _, uid := range []string{"old", "new"} {
		want := 0
		for _, body := range f.bodies {
			var patch struct {
				Metadata struct {
					UID         string            `json:"uid"`
					Annotations map[string]string `json:"annotations"`
				} `json:"metadata"`
			}
			if err := json.Unmarshal([]byte(body), &patch); err != nil {
				t.Fatal(err)
			}
			if patch.Metadata.UID != uid {
				continue
			}
			want++
			var statuses []nadv1.NetworkStatus
			if err := json.Unmarshal([]byte(patch.Metadata.Annotations[nadv1.NetworkStatusAnnot]), &statuses); err != nil {
				t.Fatal(err)
			}
			if len(statuses) != 1 || statuses[0].Interface != uid {
				t.Errorf("PATCH for UID %s carries %+v, want its own status", uid, statuses)
			}
		}
		if want != 1 {
			t.Errorf("%d PATCHes for UID %s, want 1", want, uid)
		}
	}
}

// TestQueueKeyWithoutUID: without a UID a pod is its namespace/name, and
// the last status queued for it wins as before.
func TestQueueKeyWithoutUID(t *testing.T) {
	f := newIdleQueueFixture(t, nil)
	ctx := context.Background()
	_ = f.queue.Record(ctx, PodRef{Namespace: "ns", Name: "p"}, statusOn("first"))
	_ = f.queue.Record(ctx, PodRef{Namespace: "ns", Name: "p"}, statusOn("last"))
	if n := f.queue.Pending(); n != 1 {
		t.Errorf("Pending = %d, want 1 pod", n)
	}
	f.start(t)
	if got := f.waitWritten(t); len(got) != 1 || got[0].Interface != "last" {
		t.Errorf("status written = %+v, want the last", got)
	}
	if n := f.patches.Load(); n != 1 {
		t.Errorf("%d PATCHes, want 1", n)
	}
}
