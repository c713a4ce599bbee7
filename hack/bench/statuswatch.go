package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	nadutils "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/utils"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// statusWatch follows the pods of the bench namespace through an informer
// and hands a waiter the first network-status of its pod that it wants,
// stamped with the moment the informer delivered it: no polling, so the
// resolution is the watch's own.
type statusWatch struct {
	factory informers.SharedInformerFactory
	cancel  context.CancelFunc
	mu      sync.Mutex
	waiters map[string]*waiter // by pod name
}

// waiter is one expectation of a pod's network-status.
type waiter struct {
	want func([]nadv1.NetworkStatus) bool
	seen chan observed // buffered, sent at most once: the handler never blocks
}

// observed is a pod's network-status and when it arrived.
type observed struct {
	at       time.Time
	statuses []nadv1.NetworkStatus
}

// watchStatuses starts the informer and waits until it has listed the
// namespace's pods. stop ends it.
func watchStatuses(ctx context.Context, client kubernetes.Interface) (*statusWatch, error) {
	ctx, cancel := context.WithCancel(ctx)
	w := &statusWatch{
		factory: informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(namespace)),
		cancel:  cancel,
		waiters: map[string]*waiter{},
	}
	_, err := w.factory.Core().V1().Pods().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    w.observe,
		UpdateFunc: func(_, obj any) { w.observe(obj) },
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("watch pods of namespace %s: %w", namespace, err)
	}
	w.factory.Start(ctx.Done())
	for _, synced := range w.factory.WaitForCacheSync(ctx.Done()) {
		if !synced {
			w.stop()
			return nil, fmt.Errorf("list pods of namespace %s: %w", namespace, context.Cause(ctx))
		}
	}
	return w, nil
}

// stop ends the informer and waits for it.
func (w *statusWatch) stop() {
	w.cancel()
	w.factory.Shutdown()
}

// expect registers a wait for the pod's next network-status that want
// accepts, replacing an earlier wait for the pod. Only what arrives from
// now on counts: register before the change that should bring it.
func (w *statusWatch) expect(pod string, want func([]nadv1.NetworkStatus) bool) <-chan observed {
	wt := &waiter{want: want, seen: make(chan observed, 1)}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.waiters[pod] = wt
	return wt.seen
}

// observe is the informer's handler for added and updated pods.
func (w *statusWatch) observe(obj any) {
	at := time.Now()
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	w.mu.Lock()
	wt := w.waiters[pod.Name]
	w.mu.Unlock()
	if wt == nil {
		return
	}
	// No network-status yet, or one that does not decode: never wanted.
	statuses, err := nadutils.GetNetworkStatus(pod)
	if err != nil || !wt.want(statuses) {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.waiters[pod.Name] != wt {
		return // replaced meanwhile
	}
	delete(w.waiters, pod.Name)
	wt.seen <- observed{at: at, statuses: statuses}
}

// await waits at most timeout for what seen brings; what names the wait
// in the error.
func await(ctx context.Context, seen <-chan observed, timeout time.Duration, what string) (observed, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case o := <-seen:
		return o, nil
	case <-t.C:
		return observed{}, fmt.Errorf("%s: not within %s", what, timeout)
	case <-ctx.Done():
		return observed{}, fmt.Errorf("%s: %w", what, context.Cause(ctx))
	}
}

// listed is the entry of network (namespace/name) in statuses, or nil.
func listed(statuses []nadv1.NetworkStatus, network string) *nadv1.NetworkStatus {
	for i := range statuses {
		if statuses[i].Name == network {
			return &statuses[i]
		}
	}
	return nil
}
