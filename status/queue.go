package status

import (
	"context"
	"log/slog"
	"sync"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	"k8s.io/client-go/util/workqueue"
)

// maxAttempts bounds the writes of one status before it is given up; with
// client-go's controller backoff (5 ms doubling) the last comes after about
// ten seconds.
const maxAttempts = 12

// Queue records network-status in the background: Record returns at once
// and workers PATCH, retrying with backoff until the API server takes it or
// the pod is gone. Of several statuses queued for one pod only the last is
// written; a pod is its UID, so the status of a pod recreated under the same
// name neither replaces nor is replaced by its predecessor's. braidd records through it, so a CNI ADD does not wait for an
// etcd write and a slow or briefly failing API server does not fail pod
// starts; the thin plugin, which exits right after ADD, writes inline.
type Queue struct {
	writer *Writer
	log    *slog.Logger
	queue  workqueue.TypedRateLimitingInterface[string]

	mu     sync.Mutex
	latest map[string]queued // by queueKey
	seq    uint64
}

// queued is one pod's status waiting to be written; seq tells a status
// queued again while it was being written.
type queued struct {
	pod      PodRef
	statuses []nadv1.NetworkStatus
	seq      uint64
}

// NewQueue returns a queue writing through w. Run starts its workers.
func NewQueue(w *Writer, log *slog.Logger) *Queue {
	return newQueue(w, log, workqueue.DefaultTypedControllerRateLimiter[string]())
}

func newQueue(w *Writer, log *slog.Logger, backoff workqueue.TypedRateLimiter[string]) *Queue {
	return &Queue{
		writer: w,
		log:    log,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(backoff,
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "network-status"}),
		latest: map[string]queued{},
	}
}

// Record queues statuses for pod and returns nil: the write happens later.
func (q *Queue) Record(_ context.Context, pod PodRef, statuses []nadv1.NetworkStatus) error {
	key := queueKey(pod)
	q.mu.Lock()
	q.seq++
	q.latest[key] = queued{pod: pod, statuses: statuses, seq: q.seq}
	q.mu.Unlock()
	q.queue.Add(key)
	return nil
}

// queueKey is the pod's UID, or namespace/name when the runtime gave no UID
// (a UID never contains "/", so the two kinds of key cannot meet).
func queueKey(pod PodRef) string {
	if pod.UID != "" {
		return string(pod.UID)
	}
	return pod.Namespace + "/" + pod.Name
}

// Event emits the event through the writer.
func (q *Queue) Event(ctx context.Context, pod PodRef, eventType, reason, message string) error {
	return q.writer.Event(ctx, pod, eventType, reason, message)
}

// Pending counts the pods whose latest status is not written yet.
func (q *Queue) Pending() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.latest)
}

// Run writes with workers goroutines until ctx ends. Then what is still
// queued gets one more try each, for at most drain altogether, so that a
// daemon stopping (a rollout) does not drop the last pods' statuses.
func (q *Queue) Run(ctx context.Context, workers int, drain time.Duration) {
	writeCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for q.next(writeCtx) {
			}
		}()
	}
	<-ctx.Done()
	timer := time.AfterFunc(drain, cancel)
	defer timer.Stop()
	// Workers take what is queued, then see the shutdown.
	q.queue.ShutDown()
	wg.Wait()
}

// next writes one queued status; false once the queue is shut down and empty.
func (q *Queue) next(ctx context.Context) bool {
	key, shutdown := q.queue.Get()
	if shutdown {
		return false
	}
	defer q.queue.Done(key)
	q.mu.Lock()
	item, ok := q.latest[key]
	q.mu.Unlock()
	if !ok {
		q.queue.Forget(key)
		return true
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err := q.writer.Record(wctx, item.pod, item.statuses)
	cancel()
	pod := item.pod.Namespace + "/" + item.pod.Name
	switch {
	case err == nil:
		q.finish(key, item)
	case PodGone(err):
		q.log.Info("pod deleted or recreated before its network-status was written", "pod", pod, "uid", item.pod.UID)
		q.finish(key, item)
	case q.queue.NumRequeues(key)+1 >= maxAttempts || ctx.Err() != nil:
		q.log.Error("network-status not written; giving up", "pod", pod, "uid", item.pod.UID, "attempts", q.queue.NumRequeues(key)+1, "error", err)
		q.finish(key, item)
	default:
		q.log.Warn("network-status not written; retrying", "pod", pod, "uid", item.pod.UID, "error", err)
		q.queue.AddRateLimited(key)
	}
	return true
}

// finish forgets key's status unless a newer one was queued meanwhile,
// which the queue then hands out again.
func (q *Queue) finish(key string, item queued) {
	q.queue.Forget(key)
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.latest[key].seq == item.seq {
		delete(q.latest, key)
	}
}
