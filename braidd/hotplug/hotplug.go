// Package hotplug is braidd's hot-plug controller: it watches the networks
// annotation of the pods on its node and, when it changes (and once for
// every pod when braidd starts, so a change made while it was down is
// applied), runs the core's Sync for each of the pod's sandboxes braid
// attached, found in the journal. Code 11 (a NAD not there yet, API
// trouble, the runtime busy with the container) is retried with backoff
// until it succeeds or the annotation changes; any other failure is
// reported once (the core leaves the Warning event) and not retried until
// the annotation changes. The pod's annotation is never written.
package hotplug

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	corev1 "k8s.io/api/core/v1"
	k8stypes "k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/workqueue"

	"github.com/braid-cni/braid/annotations"
	"github.com/braid-cni/braid/plan"
)

// Journal lists the journaled plans (journal.Store).
type Journal interface {
	List() ([]string, error)
	Load(id string) (*plan.Plan, error)
}

// Controller reconciles running pods' networks with their annotation.
// Set the fields, call Observe from the pod informer and Run once.
type Controller struct {
	Journal Journal
	// Sync applies the annotation to one container (braidd's server:
	// the core's Sync, cancelled by the runtime's DEL).
	Sync func(ctx context.Context, containerID string) (*plan.Change, error)
	// Backoff spaces the retries of code 11; nil: client-go's controller
	// default (exponential from 5 ms to 1000 s, and a bucket limit).
	Backoff workqueue.TypedRateLimiter[k8stypes.UID]
	Log     *slog.Logger

	once  sync.Once
	queue workqueue.TypedRateLimitingInterface[k8stypes.UID]
	mu    sync.Mutex
	// wanted is each pod's networks annotation as last seen; failed the
	// value whose change failed for good, not tried again.
	wanted map[k8stypes.UID]string
	failed map[k8stypes.UID]string
	// owners is the pod of each journaled container seen so far, so that
	// a pod's change loads only entries that are new since the last one:
	// a container's pod never changes.
	ownersMu sync.Mutex
	owners   map[string]k8stypes.UID
}

func (c *Controller) init() {
	c.once.Do(func() {
		backoff := c.Backoff
		if backoff == nil {
			backoff = workqueue.DefaultTypedControllerRateLimiter[k8stypes.UID]()
		}
		c.queue = workqueue.NewTypedRateLimitingQueueWithConfig(backoff,
			workqueue.TypedRateLimitingQueueConfig[k8stypes.UID]{Name: "hotplug"})
		c.wanted = map[k8stypes.UID]string{}
		c.failed = map[k8stypes.UID]string{}
		c.owners = map[string]k8stypes.UID{}
		if c.Log == nil {
			c.Log = slog.New(slog.DiscardHandler)
		}
	})
}

// Observe is the pod informer's handler (kube.Cache.OnPods): a pod seen
// for the first time (braidd starting, or a new pod) and a pod whose
// networks annotation changed are queued; a resync queues a pod whose
// last change has not been applied yet. A value that failed for good is
// not queued again.
func (c *Controller) Observe(old, pod *corev1.Pod) {
	c.init()
	value := pod.Annotations[annotations.NetworksKey]
	c.mu.Lock()
	defer c.mu.Unlock()
	if old != nil && old.Annotations[annotations.NetworksKey] == value && old.ResourceVersion != pod.ResourceVersion {
		return // another field changed
	}
	if f, ok := c.failed[pod.UID]; ok && f == value {
		return
	}
	delete(c.failed, pod.UID)
	c.wanted[pod.UID] = value
	c.queue.Add(pod.UID)
}

// Forget is the pod informer's delete handler: what the controller kept of
// a deleted pod goes (the runtime's DEL removes its attachments).
func (c *Controller) Forget(pod *corev1.Pod) {
	c.init()
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.wanted, pod.UID)
	delete(c.failed, pod.UID)
}

// Run works the queue with workers until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) {
	c.init()
	go func() {
		<-ctx.Done()
		c.queue.ShutDown()
	}()
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wait.UntilWithContext(ctx, func(ctx context.Context) {
				for c.next(ctx) {
				}
			}, time.Second)
		}()
	}
	wg.Wait()
}

// next handles one queued pod; false once the queue shut down.
func (c *Controller) next(ctx context.Context) bool {
	uid, shutdown := c.queue.Get()
	if shutdown {
		return false
	}
	defer c.queue.Done(uid)
	c.mu.Lock()
	value := c.wanted[uid]
	c.mu.Unlock()
	err := c.reconcile(ctx, uid)
	var te *types.Error
	switch {
	case err == nil:
		c.queue.Forget(uid)
	case errors.As(err, &te) && te.Code == types.ErrTryAgainLater:
		c.Log.Info("hot-plug to be tried again", "pod", uid, "error", err)
		c.queue.AddRateLimited(uid)
	default:
		c.Log.Warn("hot-plug failed; not tried again until the pod's networks annotation changes", "pod", uid, "error", err)
		c.queue.Forget(uid)
		c.mu.Lock()
		if c.wanted[uid] == value {
			c.failed[uid] = value
		}
		c.mu.Unlock()
	}
	return true
}

// reconcile syncs every journaled container of the pod; the first error
// is returned after all were tried.
func (c *Controller) reconcile(ctx context.Context, uid k8stypes.UID) error {
	ids, err := c.containers(uid)
	if err != nil {
		return types.NewError(types.ErrTryAgainLater, "hot-plug of pod "+string(uid), err.Error())
	}
	if len(ids) == 0 {
		// Not attached yet (ADD comes), or gone: nothing to keep for it.
		c.mu.Lock()
		delete(c.wanted, uid)
		delete(c.failed, uid)
		c.mu.Unlock()
		return nil
	}
	var first error
	for _, id := range ids {
		change, err := c.Sync(ctx, id)
		if err != nil {
			if first == nil {
				first = err
			}
			continue
		}
		if change != nil && !change.Empty() {
			c.Log.Info("pod's networks changed", "pod", change.Next.Pod.Namespace+"/"+change.Next.Pod.Name, "container", id, "added", len(change.Added), "removed", len(change.Removed))
		}
	}
	return first
}

// containers lists the journaled containers of the pod with uid. Only
// entries not seen before are loaded; one that does not load is doctor's
// business, not hot-plug's, and is tried again next time.
func (c *Controller) containers(uid k8stypes.UID) ([]string, error) {
	ids, err := c.Journal.List()
	if err != nil {
		return nil, err
	}
	c.ownersMu.Lock()
	defer c.ownersMu.Unlock()
	listed := make(map[string]bool, len(ids))
	var out []string
	for _, id := range ids {
		listed[id] = true
		owner, ok := c.owners[id]
		if !ok {
			p, err := c.Journal.Load(id)
			if err != nil {
				continue
			}
			owner = p.Pod.UID
			c.owners[id] = owner
		}
		if owner == uid {
			out = append(out, id)
		}
	}
	for id := range c.owners {
		if !listed[id] {
			delete(c.owners, id)
		}
	}
	return out, nil
}
