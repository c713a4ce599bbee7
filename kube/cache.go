package kube

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
)

// nadDesc names the NAD informer in errors.
const nadDesc = "network-attachment-definitions"

// CacheOptions configures NewCache.
type CacheOptions struct {
	// NodeName selects the pods to cache: those with spec.nodeName equal to
	// it. Empty caches every node's pods (tools and tests; the daemon always
	// sets it).
	NodeName string
	// Resync is the informers' resync period; 0: no resync.
	Resync time.Duration
}

// CacheStats is what Cache exposes as metrics.
type CacheStats struct {
	Pods, NADs int // objects in the cache
	// PodFallbacks and NADFallbacks count live GETs: cache misses, reads
	// before the cache synced, and FreshPod calls.
	PodFallbacks, NADFallbacks uint64
}

// Cache serves pods and NetworkAttachmentDefinitions from informers, for the
// node daemon. It satisfies the plan builder's pod getter and the resolver's
// NAD getter, like Clients does with live GETs.
type Cache struct {
	clients      *Clients
	pods         cache.SharedIndexInformer
	nads         cache.SharedIndexInformer
	podDesc      string // names the pod informer in errors
	podFallbacks atomic.Uint64
	nadFallbacks atomic.Uint64
}

// NewCache builds informers for this node's pods and for NADs in all
// namespaces. Their transforms drop what braid never reads, so 1000 pods
// stay small: managedFields and the last-applied-configuration annotation
// everywhere, and from pods the spec except spec.nodeName and the status
// except phase and pod IPs. It does not start them.
func NewCache(clients *Clients, opts CacheOptions) *Cache {
	podDesc := "pods"
	if opts.NodeName != "" {
		podDesc = "pods on node " + opts.NodeName
	}
	pods := cache.NewSharedIndexInformerWithOptions(podListWatch(clients, opts.NodeName), &corev1.Pod{},
		cache.SharedIndexInformerOptions{ResyncPeriod: opts.Resync, ObjectDescription: podDesc})
	nads := cache.NewSharedIndexInformerWithOptions(nadListWatch(clients), &nadv1.NetworkAttachmentDefinition{},
		cache.SharedIndexInformerOptions{ResyncPeriod: opts.Resync, ObjectDescription: nadDesc})
	// SetTransform fails only once an informer has started; these are new.
	_ = pods.SetTransform(slimPod)
	_ = nads.SetTransform(slimNAD)
	return &Cache{clients: clients, pods: pods, nads: nads, podDesc: podDesc}
}

// Start runs the informers until ctx ends; call it once. It does not wait
// for them to sync; see WaitForSync.
func (c *Cache) Start(ctx context.Context) {
	go c.pods.RunWithContext(ctx)
	go c.nads.RunWithContext(ctx)
}

// OnPods calls f for every pod the cache adds or updates, resyncs
// included: old is nil for a pod added (at the first list too), else the
// pod as the cache held it before (the same object's copy on a resync);
// and gone for every pod deleted. Call it before Start.
func (c *Cache) OnPods(f func(old, pod *corev1.Pod), gone func(pod *corev1.Pod)) error {
	_, err := c.pods.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if pod, ok := obj.(*corev1.Pod); ok {
				f(nil, pod)
			}
		},
		UpdateFunc: func(oldObj, newObj any) {
			old, ok1 := oldObj.(*corev1.Pod)
			pod, ok2 := newObj.(*corev1.Pod)
			if ok1 && ok2 {
				f(old, pod)
			}
		},
		DeleteFunc: func(obj any) {
			if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = tomb.Obj
			}
			if pod, ok := obj.(*corev1.Pod); ok {
				gone(pod)
			}
		},
	})
	if err != nil {
		return fmt.Errorf("watch %s: %w", c.podDesc, err)
	}
	return nil
}

// HasSynced reports whether both informers have listed once.
func (c *Cache) HasSynced() bool {
	return c.pods.HasSynced() && c.nads.HasSynced()
}

// Unsynced names the informers that have not listed yet.
func (c *Cache) Unsynced() []string {
	var pending []string
	if !c.pods.HasSynced() {
		pending = append(pending, c.podDesc)
	}
	if !c.nads.HasSynced() {
		pending = append(pending, nadDesc)
	}
	return pending
}

// WaitForSync blocks until both informers have synced or ctx ends; the
// error names the ones that had not.
func (c *Cache) WaitForSync(ctx context.Context) error {
	if cache.WaitForCacheSync(ctx.Done(), c.HasSynced) {
		return nil
	}
	pending := c.Unsynced()
	if len(pending) == 0 {
		return nil // synced just as ctx ended
	}
	return fmt.Errorf("wait for informer cache of %s: %w", strings.Join(pending, " and "), context.Cause(ctx))
}

// GetPod reads a pod from the cache. A pod the cache has not seen (created a
// moment ago), or any pod before the cache has synced, is read with one live
// GET whose result is not cached; a missing pod is an apierrors NotFound
// error. The caller owns the returned pod.
//
// A cached pod can be a moment behind the API server: a pod deleted and
// recreated under the same name may still be the old one, with the old UID.
// The cache cannot tell, since the caller's expected UID is not part of the
// getter contract; a caller that checks UIDs re-reads a mismatch with
// FreshPod.
func (c *Cache) GetPod(ctx context.Context, namespace, name string) (*corev1.Pod, error) {
	if pod, ok := cached(c.pods, namespace, name).(*corev1.Pod); ok {
		return pod.DeepCopy(), nil
	}
	return c.FreshPod(ctx, namespace, name)
}

// FreshPod reads a pod with a live GET, bypassing the cache, and counts it as
// a fallback.
func (c *Cache) FreshPod(ctx context.Context, namespace, name string) (*corev1.Pod, error) {
	c.podFallbacks.Add(1)
	return c.clients.FreshPod(ctx, namespace, name)
}

// GetNAD reads a NetworkAttachmentDefinition like GetPod reads a pod: from
// the cache, else (a NAD created a moment before its pod, or a cache not
// synced yet) with one live GET. The caller owns the returned NAD.
func (c *Cache) GetNAD(ctx context.Context, namespace, name string) (*nadv1.NetworkAttachmentDefinition, error) {
	if obj, ok := cached(c.nads, namespace, name).(*nadv1.NetworkAttachmentDefinition); ok {
		return obj.DeepCopy(), nil
	}
	c.nadFallbacks.Add(1)
	return c.clients.GetNAD(ctx, namespace, name)
}

// Stats counts cached objects and live GETs so far.
func (c *Cache) Stats() CacheStats {
	return CacheStats{
		Pods:         len(c.pods.GetStore().ListKeys()),
		NADs:         len(c.nads.GetStore().ListKeys()),
		PodFallbacks: c.podFallbacks.Load(),
		NADFallbacks: c.nadFallbacks.Load(),
	}
}

// cached returns the informer's object for namespace/name, or nil when the
// informer has not synced or does not hold it.
func cached(inf cache.SharedIndexInformer, namespace, name string) any {
	if !inf.HasSynced() {
		return nil
	}
	obj, ok, err := inf.GetIndexer().GetByKey(cache.NewObjectName(namespace, name).String())
	if err != nil || !ok {
		return nil
	}
	return obj
}

// podListWatch lists and watches the pods on node. The field selector does
// the work on a real API server; the filter behind it keeps other nodes'
// pods out of the cache when it is ignored (fake clientsets ignore it).
// Against an API server the informer syncs from a watch that streams the
// initial pods (client-go's WatchListClient); a client that cannot stream
// them (client-go's fake clientset says so) gets a list and a watch.
func podListWatch(clients *Clients, node string) cache.ListerWatcher {
	pods := clients.Core.CoreV1().Pods(metav1.NamespaceAll)
	selector := fields.Everything()
	if node != "" {
		selector = fields.OneTermEqualSelector("spec.nodeName", node)
	}
	elsewhere := func(pod *corev1.Pod) bool { return !selector.Matches(fields.Set{"spec.nodeName": pod.Spec.NodeName}) }
	return cache.ToListWatcherWithWatchListSemantics(&cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			opts.FieldSelector = selector.String()
			list, err := pods.List(ctx, opts)
			if err != nil {
				return nil, err
			}
			list.Items = slices.DeleteFunc(list.Items, func(p corev1.Pod) bool { return elsewhere(&p) })
			return list, nil
		},
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			opts.FieldSelector = selector.String()
			w, err := pods.Watch(ctx, opts)
			if err != nil {
				return nil, err
			}
			return watch.Filter(w, func(e watch.Event) (watch.Event, bool) {
				pod, ok := e.Object.(*corev1.Pod)
				// Bookmarks carry an empty pod; they must pass.
				keep := !ok || e.Type == watch.Bookmark || !elsewhere(pod)
				return e, keep
			}), nil
		},
	}, clients.Core)
}

// nadListWatch lists and watches NADs in all namespaces, streaming the
// initial NADs as podListWatch does unless the client says it cannot.
func nadListWatch(clients *Clients) cache.ListerWatcher {
	nads := clients.NADs.K8sCniCncfIoV1().NetworkAttachmentDefinitions(metav1.NamespaceAll)
	return cache.ToListWatcherWithWatchListSemantics(&cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			return nads.List(ctx, opts)
		},
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			return nads.Watch(ctx, opts)
		},
	}, clients.NADs)
}

// slimPod keeps what braid reads from a pod: its metadata (annotations, UID,
// namespace, name), spec.nodeName, status phase and IPs, and its
// ResourceClaims (spec and status). It builds a new
// pod rather than editing the one it is given. Anything else (a tombstone,
// whose pod went through here already) passes unchanged.
func slimPod(obj any) (any, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	return &corev1.Pod{
		TypeMeta:   pod.TypeMeta,
		ObjectMeta: slimMeta(pod.ObjectMeta),
		// The pod's ResourceClaims name the devices of device-backed
		// networks under DRA.
		Spec: corev1.PodSpec{NodeName: pod.Spec.NodeName, ResourceClaims: pod.Spec.ResourceClaims},
		Status: corev1.PodStatus{
			Phase:                       pod.Status.Phase,
			PodIP:                       pod.Status.PodIP,
			PodIPs:                      pod.Status.PodIPs,
			ResourceClaimStatuses:       pod.Status.ResourceClaimStatuses,
			ExtendedResourceClaimStatus: pod.Status.ExtendedResourceClaimStatus,
		},
	}, nil
}

// slimNAD drops a NAD's managedFields and last-applied-configuration, which
// repeats spec.config.
func slimNAD(obj any) (any, error) {
	nad, ok := obj.(*nadv1.NetworkAttachmentDefinition)
	if !ok {
		return obj, nil
	}
	return &nadv1.NetworkAttachmentDefinition{
		TypeMeta:   nad.TypeMeta,
		ObjectMeta: slimMeta(nad.ObjectMeta),
		Spec:       nad.Spec,
	}, nil
}

// slimMeta drops managedFields and kubectl's last-applied-configuration
// annotation (a copy of the whole object as applied); braid reads neither.
func slimMeta(m metav1.ObjectMeta) metav1.ObjectMeta {
	m.ManagedFields = nil
	if _, ok := m.Annotations[corev1.LastAppliedConfigAnnotation]; ok {
		m.Annotations = maps.Clone(m.Annotations)
		delete(m.Annotations, corev1.LastAppliedConfigAnnotation)
	}
	return m
}
