package kube_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	goruntime "runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	nadfake "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/client/clientset/versioned/fake"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	k8sfake "k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"

	"github.com/braid-cni/braid/kube"
	"github.com/braid-cni/braid/nad"
	"github.com/braid-cni/braid/plan"
)

var (
	_ plan.PodGetter = (*kube.Cache)(nil)
	_ nad.Getter     = (*kube.Cache)(nil)
)

const (
	node, podsRes, nadsRes = "node-a", "pods", "network-attachment-definitions"
	networksKey            = nadv1.NetworkAttachmentAnnot
	resourceNameKey        = "k8s.v1.cni.cncf.io/resourceName"
)

// fixture is a cache over fake clientsets. The fakes ignore field selectors, and
// their watches miss what happens between list and watch: start waits for them.
type fixture struct {
	core     *k8sfake.Clientset
	nads     *nadfake.Clientset
	cache    *kube.Cache
	watching []<-chan struct{}
}

func newFixture(t *testing.T, nodeName string, objs ...runtime.Object) *fixture {
	t.Helper()
	f := &fixture{core: k8sfake.NewClientset(), nads: nadfake.NewSimpleClientset()}
	for _, o := range objs {
		var err error
		switch o := o.(type) {
		case *corev1.Pod:
			_, err = f.core.CoreV1().Pods(o.Namespace).Create(t.Context(), o, metav1.CreateOptions{})
		case *nadv1.NetworkAttachmentDefinition: // NewSimpleClientset would file it under a guessed resource the client never reads
			_, err = f.nads.K8sCniCncfIoV1().NetworkAttachmentDefinitions(o.Namespace).Create(t.Context(), o, metav1.CreateOptions{})
		}
		must(t, err)
	}
	f.watching = []<-chan struct{}{signalWatch(&f.core.Fake, f.core.Tracker(), podsRes), signalWatch(&f.nads.Fake, f.nads.Tracker(), nadsRes)}
	f.cache = kube.NewCache(&kube.Clients{Core: f.core, NADs: listingNADFake{f.nads}}, kube.CacheOptions{NodeName: nodeName})
	return f
}

// start runs the cache until the test ends, and waits for sync and watches.
func (f *fixture) start(t *testing.T) {
	t.Helper()
	f.cache.Start(t.Context())
	must(t, f.cache.WaitForSync(t.Context()))
	for _, ch := range f.watching {
		<-ch
	}
}

// listingNADFake is the NAD client's fake clientset saying, as client-go's
// fake does since v0.35, that its watches cannot stream the initial
// objects, so informers list first. The NAD client's generated fake
// predates that; without it an informer waits for a stream that never
// comes.
type listingNADFake struct{ *nadfake.Clientset }

func (listingNADFake) IsWatchListSemanticsUnSupported() bool { return true }

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// signalWatch serves watches as the fake does, and closes the channel on one.
func signalWatch(fake *clienttesting.Fake, tracker clienttesting.ObjectTracker, resource string) <-chan struct{} {
	opened := make(chan struct{})
	var once sync.Once
	fake.PrependWatchReactor(resource, func(a clienttesting.Action) (bool, watch.Interface, error) {
		w, err := tracker.Watch(a.GetResource(), a.GetNamespace())
		once.Do(func() { close(opened) })
		return true, w, err
	})
	return opened
}

// gets counts GET actions on the fakes.
func (f *fixture) gets() int {
	return len(slices.DeleteFunc(append(f.core.Actions(), f.nads.Actions()...), func(a clienttesting.Action) bool { return a.GetVerb() != "get" }))
}

// inCache reports whether GetPod finds the pod without a live GET.
func inCache(c *kube.Cache, name string) bool {
	before := c.Stats().PodFallbacks
	_, err := c.GetPod(context.Background(), "default", name)
	return err == nil && c.Stats().PodFallbacks == before
}

func pod(name, nodeName string) *corev1.Pod {
	meta := metav1.ObjectMeta{Namespace: "default", Name: name, UID: types.UID("uid-" + name)}
	return &corev1.Pod{ObjectMeta: meta, Spec: corev1.PodSpec{NodeName: nodeName}}
}

func netAttach(name string) *nadv1.NetworkAttachmentDefinition {
	return &nadv1.NetworkAttachmentDefinition{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name}}
}

// TestCacheListWatch: only this node's pods are cached, from list and watch.
func TestCacheListWatch(t *testing.T) {
	tests := []struct {
		name, node, wantSelector string
		wantCached               []string
	}{
		{name: "this node", node: node, wantSelector: "spec.nodeName=node-a", wantCached: []string{"a2"}},
		{name: "no node name: every pod", wantCached: []string{"a2", "b1", "b2", "unscheduled"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			f := newFixture(t, tt.node, pod("a1", node), pod("b1", "node-b"), pod("unscheduled", ""))
			f.start(t)
			for _, a := range f.core.Actions() {
				sel := "not a list or watch"
				if l, ok := a.(clienttesting.ListAction); ok {
					sel = l.GetListRestrictions().Fields.String()
				} else if w, ok := a.(clienttesting.WatchAction); ok {
					sel = w.GetWatchRestrictions().Fields.String()
				}
				if a.GetVerb() != "create" && sel != tt.wantSelector {
					t.Errorf("%s pods: field selector %q, want %q", a.GetVerb(), sel, tt.wantSelector)
				}
			}
			// In watch order: once a2 is cached, b2 has been seen too.
			for _, p := range []*corev1.Pod{pod("b2", "node-b"), pod("a2", node)} {
				_, err := f.core.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{})
				must(t, err)
			}
			_, err := f.nads.K8sCniCncfIoV1().NetworkAttachmentDefinitions("default").Create(ctx, netAttach("macvlan"), metav1.CreateOptions{})
			must(t, err)
			must(t, f.core.CoreV1().Pods("default").Delete(ctx, "a1", metav1.DeleteOptions{}))
			for !inCache(f.cache, "a2") || inCache(f.cache, "a1") || f.cache.Stats().NADs != 1 {
				time.Sleep(5 * time.Millisecond) // for the watch events; the test timeout bounds it
			}
			if got := f.cache.Stats().Pods; got != len(tt.wantCached) {
				t.Errorf("cached pods: %d, want %d", got, len(tt.wantCached))
			}
			for _, name := range tt.wantCached {
				if !inCache(f.cache, name) {
					t.Errorf("pod %s: read with a live GET, want from the cache", name)
				}
			}
		})
	}
}

func TestCacheTransform(t *testing.T) {
	full, n := fatPod(t, 0), fatNAD(0)
	full.Annotations[corev1.LastAppliedConfigAnnotation] = "{}"
	f := newFixture(t, node, &full, n)
	f.start(t)
	got, err := f.cache.GetPod(t.Context(), full.Namespace, full.Name)
	must(t, err)
	want := &corev1.Pod{
		ObjectMeta: *full.ObjectMeta.DeepCopy(),
		Spec:       corev1.PodSpec{NodeName: node},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning, PodIP: full.Status.PodIP, PodIPs: full.Status.PodIPs},
	}
	want.ManagedFields = nil
	delete(want.Annotations, corev1.LastAppliedConfigAnnotation)
	got.TypeMeta, got.ResourceVersion = metav1.TypeMeta{}, "" // set by the tracker
	if !equality.Semantic.DeepEqual(got, want) || got.Annotations[networksKey] == "" || got.UID == "" {
		t.Errorf("cached pod:\n got %v\nwant %v", got, want)
	}
	gotNAD, err := f.cache.GetNAD(t.Context(), n.Namespace, n.Name)
	must(t, err)
	if gotNAD.ManagedFields != nil || gotNAD.Spec != n.Spec || len(gotNAD.Annotations) != 1 || gotNAD.Annotations[resourceNameKey] == "" {
		t.Errorf("cached NAD: %+v; want no managedFields or last-applied, the other annotation and spec kept", gotNAD)
	}
	got.Annotations[networksKey] = "edited" // the caller owns what it gets
	if again, _ := f.cache.GetPod(t.Context(), full.Namespace, full.Name); again.Annotations[networksKey] == "edited" {
		t.Errorf("editing a returned pod changed the cache")
	}
	if s := f.cache.Stats(); s.PodFallbacks+s.NADFallbacks != 0 || f.gets() != 0 {
		t.Errorf("reads went to the API server: %+v", s)
	}
}

func TestCacheGet(t *testing.T) {
	type getFunc func(context.Context, *kube.Cache, string) (metav1.Object, error)
	getPod := func(ctx context.Context, c *kube.Cache, name string) (metav1.Object, error) {
		return c.GetPod(ctx, "default", name)
	}
	freshPod := func(ctx context.Context, c *kube.Cache, name string) (metav1.Object, error) {
		return c.FreshPod(ctx, "default", name)
	}
	getNAD := func(ctx context.Context, c *kube.Cache, name string) (metav1.Object, error) {
		return c.GetNAD(ctx, "default", name)
	}
	tests := []struct {
		name, obj             string
		get                   getFunc
		noStart, wantNotFound bool
		wantLive              int // fallbacks for two reads: a live read is not cached
		wantGets              int // API GETs when not wantLive: a missing NAD is asked the watch cache, then etcd
	}{
		{name: "cached pod", obj: "a1", get: getPod},
		{name: "pod created a moment ago", obj: "fresh", get: getPod, wantLive: 2},
		{name: "missing pod", obj: "gone", get: getPod, wantNotFound: true, wantLive: 2},
		{name: "pod before sync", obj: "a1", get: getPod, noStart: true, wantLive: 2},
		{name: "FreshPod of a cached pod", obj: "a1", get: freshPod, wantLive: 2},
		{name: "cached NAD", obj: "macvlan", get: getNAD},
		{name: "NAD created a moment ago", obj: "fresh", get: getNAD, wantLive: 2},
		{name: "missing NAD", obj: "gone", get: getNAD, wantNotFound: true, wantLive: 2, wantGets: 4},
		{name: "NAD before sync", obj: "macvlan", get: getNAD, noStart: true, wantLive: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, node, pod("a1", node), netAttach("macvlan"))
			// "fresh" is on the API server; its watch event is not in yet.
			f.core.PrependReactor("get", podsRes, getOnly("fresh", pod("fresh", node)))
			f.nads.PrependReactor("get", nadsRes, getOnly("fresh", netAttach("fresh")))
			if !tt.noStart {
				f.start(t)
			}
			for range 2 {
				obj, err := tt.get(t.Context(), f.cache, tt.obj)
				if tt.wantNotFound && !apierrors.IsNotFound(err) || !tt.wantNotFound && (err != nil || obj.GetName() != tt.obj) {
					t.Fatalf("got %v, %v; want %s (NotFound: %v)", obj, err, tt.obj, tt.wantNotFound)
				}
			}
			s := f.cache.Stats()
			wantGets := tt.wantGets
			if wantGets == 0 {
				wantGets = tt.wantLive
			}
			if live := f.gets(); live != wantGets || int(s.PodFallbacks+s.NADFallbacks) != tt.wantLive {
				t.Errorf("API GETs %d, stats %+v; want %d GETs, %d fallbacks", live, s, wantGets, tt.wantLive)
			}
		})
	}
}

// getOnly answers a GET of name with obj, and leaves others to the fake.
func getOnly(name string, obj runtime.Object) clienttesting.ReactionFunc {
	return func(a clienttesting.Action) (bool, runtime.Object, error) {
		return a.(clienttesting.GetAction).GetName() == name, obj, nil
	}
}

func TestCacheWaitForSync(t *testing.T) {
	tests := []struct {
		name, block, wantMsg string // block: the resource whose list never returns
		noStart              bool
		wantErr              error
	}{
		{name: "pod list blocks", block: podsRes, wantErr: context.DeadlineExceeded, wantMsg: "cache of pods on node node-a: context deadline exceeded"},
		{name: "NAD list blocks", block: nadsRes, wantErr: context.DeadlineExceeded, wantMsg: "cache of network-attachment-definitions: context deadline"},
		{name: "not started, ctx cancelled", noStart: true, wantErr: context.Canceled, wantMsg: "pods on node node-a and network-attachment-definitions: context canceled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, node, pod("a1", node), netAttach("macvlan"))
			blocking := func(clienttesting.Action) (bool, runtime.Object, error) { <-t.Context().Done(); return false, nil, nil }
			f.core.PrependReactor("list", tt.block, blocking)
			f.nads.PrependReactor("list", tt.block, blocking)
			ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
			defer cancel()
			if tt.noStart {
				cancel()
			} else {
				f.cache.Start(t.Context())
			}
			err := f.cache.WaitForSync(ctx)
			if !errors.Is(err, tt.wantErr) || err == nil || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("error %v, want %v with %q", err, tt.wantErr, tt.wantMsg)
			}
			if f.cache.HasSynced() {
				t.Errorf("HasSynced after WaitForSync failed")
			}
		})
	}
}

// BenchmarkCacheMemory fills a cache with 1000 pods and 500 NADs shaped like
// real ones and reports, after GC: MiB, the process's live heap; cache-MiB,
// what the cache holds; full-MiB, what the objects take untransformed. The
// fake lists build the objects afresh and keep none. The loop times GetPod.
func BenchmarkCacheMemory(b *testing.B) {
	const pods, nads = 1000, 500
	listPods := func(clienttesting.Action) (bool, runtime.Object, error) {
		l := &corev1.PodList{}
		for i := range pods {
			l.Items = append(l.Items, fatPod(b, i))
		}
		return true, l, nil
	}
	listNADs := func(clienttesting.Action) (bool, runtime.Object, error) {
		l := &nadv1.NetworkAttachmentDefinitionList{}
		for i := range nads {
			l.Items = append(l.Items, *fatNAD(i))
		}
		return true, l, nil
	}
	base := liveHeap()
	_, fullPods, _ := listPods(nil)
	_, fullNADs, _ := listNADs(nil)
	fullMiB := liveHeap() - base
	goruntime.KeepAlive([]runtime.Object{fullPods, fullNADs})
	core, nadCS := k8sfake.NewClientset(), nadfake.NewSimpleClientset()
	core.PrependReactor("list", podsRes, listPods)
	nadCS.PrependReactor("list", nadsRes, listNADs)
	idle := func(clienttesting.Action) (bool, watch.Interface, error) { return true, watch.NewFake(), nil }
	core.PrependWatchReactor(podsRes, idle)
	nadCS.PrependWatchReactor(nadsRes, idle)
	c := kube.NewCache(&kube.Clients{Core: core, NADs: listingNADFake{nadCS}}, kube.CacheOptions{NodeName: node})
	base = liveHeap()
	c.Start(b.Context())
	must(b, c.WaitForSync(b.Context()))
	heapMiB := liveHeap()
	cacheMiB := heapMiB - base
	for b.Loop() {
		_, _ = c.GetPod(b.Context(), "team-7", "web-x0007")
	}
	if s := c.Stats(); s.Pods != pods || s.NADs != nads || s.PodFallbacks != 0 {
		b.Fatalf("stats %+v, want %d pods, %d NADs, every read from the cache", s, pods, nads)
	}
	for unit, v := range map[string]float64{"MiB": heapMiB, "cache-MiB": cacheMiB, "full-MiB": fullMiB} {
		b.ReportMetric(v, unit)
	}
}

// liveHeap collects (twice: sync.Pools survive one) and returns the heap in MiB.
func liveHeap() float64 {
	var m goruntime.MemStats
	goruntime.GC()
	debug.FreeOSMemory()
	goruntime.ReadMemStats(&m)
	return float64(m.HeapAlloc) / (1 << 20)
}

// fatPod is a Deployment's pod as the API server sends it: three containers with
// env, mounts, probes, four volumes, status, network-status and managedFields.
func fatPod(tb testing.TB, i int) corev1.Pod {
	var ctrs, statuses []string
	for c := range 3 {
		var env []string
		for e := range 12 {
			env = append(env, fmt.Sprintf(`{"name":"APP_SETTING_%d","value":"pod-%d-container-%d-setting-%d"}`, e, i, c, e))
		}
		ctrs = append(ctrs, fmt.Sprintf(containerJSON, c, strings.Join(env, ",")))
		statuses = append(statuses, fmt.Sprintf(`{"name":"app-%d","ready":true,"started":true,"image":"registry.example.com/team/app:v1.2.3",`+
			`"imageID":"registry.example.com/team/app@sha256:%064x","containerID":"containerd://%064x","state":{"running":{"startedAt":"2025-01-01T00:00:03Z"}}}`, c, i, 3*i+c))
	}
	var p corev1.Pod
	if err := json.Unmarshal(fmt.Appendf(nil, podJSON, i, i%20, i%500, i%250, strings.Join(ctrs, ","), strings.Join(statuses, ",")), &p); err != nil {
		tb.Fatal(err)
	}
	p.ManagedFields = managedFields(30, 40, 2) // controller-manager, kubelet, braid
	return p
}

const podJSON = `{"metadata":{"name":"web-x%04[1]d","namespace":"team-%[2]d","uid":"5f0c3a1e-%04[1]d-4b7e-9c1d-2a6f8e0b0000","creationTimestamp":"2025-01-01T00:00:00Z","labels":{"app":"web","pod-template-hash":"7d9f8c6b5","team":"team-%[2]d","version":"v1.2.3"},"annotations":{"k8s.v1.cni.cncf.io/networks":"[{\"name\":\"macvlan-%[3]d\",\"interface\":\"net1\"}]","k8s.v1.cni.cncf.io/network-status":"[{\"name\":\"cbr0\",\"interface\":\"eth0\",\"ips\":[\"10.244.1.%[4]d\"],\"mac\":\"0a:58:0a:f4:01:%02[4]x\",\"default\":true,\"dns\":{}},{\"name\":\"team-%[2]d/macvlan-%[3]d\",\"interface\":\"net1\",\"ips\":[\"192.168.1.%[4]d\"],\"mac\":\"6e:2f:1a:0b:01:%02[4]x\",\"dns\":{}}]"},"ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"web-7d9f8c6b5","uid":"0b1c2d3e-0000-4000-8000-000000000001","controller":true,"blockOwnerDeletion":true}]},
"spec":{"nodeName":"node-a","serviceAccountName":"web","restartPolicy":"Always","dnsPolicy":"ClusterFirst","schedulerName":"default-scheduler","containers":[%[5]s],"volumes":[{"name":"config","configMap":{"name":"web-config"}},{"name":"certs","secret":{"secretName":"web-tls"}},{"name":"data","emptyDir":{}},{"name":"kube-api-access","projected":{"sources":[{"serviceAccountToken":{"expirationSeconds":3607,"path":"token"}},{"configMap":{"name":"kube-root-ca.crt","items":[{"key":"ca.crt","path":"ca.crt"}]}},{"downwardAPI":{"items":[{"path":"namespace","fieldRef":{"apiVersion":"v1","fieldPath":"metadata.namespace"}}]}}]}}],"tolerations":[{"key":"node.kubernetes.io/not-ready","operator":"Exists","effect":"NoExecute","tolerationSeconds":300},{"key":"node.kubernetes.io/unreachable","operator":"Exists","effect":"NoExecute","tolerationSeconds":300}]},
"status":{"phase":"Running","hostIP":"172.18.0.2","podIP":"10.244.1.%[4]d","podIPs":[{"ip":"10.244.1.%[4]d"}],"qosClass":"Burstable","startTime":"2025-01-01T00:00:01Z","conditions":[{"type":"PodReadyToStartContainers","status":"True","lastTransitionTime":"2025-01-01T00:00:02Z"},{"type":"Initialized","status":"True","lastTransitionTime":"2025-01-01T00:00:01Z"},{"type":"Ready","status":"True","lastTransitionTime":"2025-01-01T00:00:05Z"},{"type":"ContainersReady","status":"True","lastTransitionTime":"2025-01-01T00:00:05Z"},{"type":"PodScheduled","status":"True","lastTransitionTime":"2025-01-01T00:00:00Z"}],"containerStatuses":[%[6]s]}}`

const containerJSON = `{"name":"app-%d","image":"registry.example.com/team/app:v1.2.3","command":["/app","--config=/etc/app/config.yaml"],"ports":[{"name":"http","containerPort":8080,"protocol":"TCP"}],"env":[%s],"resources":{"requests":{"cpu":"100m","memory":"128Mi"},"limits":{"cpu":"500m","memory":"512Mi"}},"volumeMounts":[{"name":"config","mountPath":"/etc/app","readOnly":true},{"name":"certs","mountPath":"/etc/tls","readOnly":true},{"name":"data","mountPath":"/var/lib/app"},{"name":"kube-api-access","mountPath":"/var/run/secrets/kubernetes.io/serviceaccount","readOnly":true}],"livenessProbe":{"httpGet":{"path":"/healthz","port":8080,"scheme":"HTTP"},"periodSeconds":10},"readinessProbe":{"httpGet":{"path":"/ready","port":8080,"scheme":"HTTP"},"periodSeconds":5},"terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File","imagePullPolicy":"IfNotPresent"}`

// managedFields has one entry a manager, of about 60 bytes a field.
func managedFields(sizes ...int) (out []metav1.ManagedFieldsEntry) {
	for m, n := range sizes {
		raw := `{"f:spec":{` + strings.Repeat(`"f:containers":{"k:{\"name\":\"app\"}":{".":{},"f:name":{}}},`, n) + `".":{}}}`
		out = append(out, metav1.ManagedFieldsEntry{Manager: fmt.Sprintf("manager-%d", m), Operation: "Update", FieldsV1: &metav1.FieldsV1{Raw: []byte(raw)}})
	}
	return out
}

// fatNAD is a macvlan NAD with whereabouts IPAM, applied with kubectl.
func fatNAD(i int) *nadv1.NetworkAttachmentDefinition {
	config := fmt.Sprintf(`{"cniVersion":"1.0.0","name":"macvlan-%d","type":"macvlan","master":"eth1","mode":"bridge","ipam":{"type":"whereabouts",`+
		`"range":"192.168.%[2]d.0/24","exclude":["192.168.%[2]d.0/28"],"routes":[{"dst":"10.10.0.0/16","gw":"192.168.%[2]d.1"}]}}`, i, i%250)
	lastApplied := `{"apiVersion":"k8s.cni.cncf.io/v1","kind":"NetworkAttachmentDefinition","spec":{"config":` + strconv.Quote(config) + `}}`
	return &nadv1.NetworkAttachmentDefinition{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: fmt.Sprintf("team-%d", i%20), Name: fmt.Sprintf("macvlan-%d", i), UID: types.UID(fmt.Sprintf("9a7e0c4d-4e21-8f3b-6d5c2e1a%04d", i)),
			Annotations:   map[string]string{resourceNameKey: "intel.com/sriov_netdevice", corev1.LastAppliedConfigAnnotation: lastApplied},
			ManagedFields: managedFields(4),
		},
		Spec: nadv1.NetworkAttachmentDefinitionSpec{Config: config},
	}
}
