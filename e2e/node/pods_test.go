package node

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	nadclientset "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/client/clientset/versioned"
	"github.com/vishvananda/netlink"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/braid-cni/braid/e2e/framework"
)

const podTimeout = 90 * time.Second

// env is one test's namespace with its NADs.
type env struct {
	t         *testing.T
	kube      kubernetes.Interface
	nads      nadclientset.Interface
	namespace string
}

// newEnv creates the namespace <mode>-<name>: each mode's scenarios run in
// namespaces of their own, as namespaces are never deleted (see
// framework.DeleteNamespaceObjects).
func newEnv(t *testing.T, m mode, name string) *env {
	t.Helper()
	kube, nads, err := shared.cp.Clients()
	if err != nil {
		t.Fatal(err)
	}
	name = m.name + "-" + name
	e := &env{t: t, kube: kube, nads: nads, namespace: name}
	if err := framework.CreateNamespace(t.Context(), kube, name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		e.deletePods(ctx)
		_ = framework.DeleteNamespaceObjects(ctx, kube, nads, name)
	})
	return e
}

// bridgeNAD is a secondary bridge network whose leases live in the shared
// lease dir.
func (e *env) bridgeNAD(name, bridge, subnet string) {
	e.t.Cleanup(func() { deleteLink(bridge) })
	e.nad(name, map[string]any{
		"cniVersion": "1.0.0", "name": name, "type": "bridge", "bridge": bridge,
		"ipam": map[string]any{"type": "host-local", "dataDir": shared.dataDir, "ranges": []any{[]any{map[string]any{"subnet": subnet}}}},
	})
}

// macvlanNAD is a macvlan network on a host veth end (this kernel has no
// dummy links).
func (e *env) macvlanNAD(name, master, subnet string) {
	e.t.Helper()
	hostVeth(e.t, master)
	for _, l := range []string{master, master + "p"} {
		if link, err := netlink.LinkByName(l); err == nil {
			_ = netlink.LinkSetUp(link)
		}
	}
	e.nad(name, map[string]any{
		"cniVersion": "1.0.0", "name": name, "type": "macvlan", "master": master, "mode": "bridge",
		"ipam": map[string]any{"type": "host-local", "dataDir": shared.dataDir, "ranges": []any{[]any{map[string]any{"subnet": subnet}}}},
	})
}

func (e *env) nad(name string, config map[string]any) {
	e.t.Helper()
	e.nadWith(name, nil, config)
}

// nadWith creates a NAD with annotations.
func (e *env) nadWith(name string, annots map[string]string, config map[string]any) {
	e.t.Helper()
	data, err := json.Marshal(config)
	if err != nil {
		e.t.Fatal(err)
	}
	obj := &nadv1.NetworkAttachmentDefinition{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: e.namespace, Annotations: annots}, Spec: nadv1.NetworkAttachmentDefinitionSpec{Config: string(data)}}
	if _, err := e.nads.K8sCniCncfIoV1().NetworkAttachmentDefinitions(e.namespace).Create(e.t.Context(), obj, metav1.CreateOptions{}); err != nil {
		e.t.Fatalf("create NAD %s/%s: %v", e.namespace, name, err)
	}
}

// pod creates a workload pod with a networks annotation.
func (e *env) pod(name, networks string) {
	e.t.Helper()
	e.podWith(name, networks, nil)
}

// podWith creates a workload pod with a networks annotation, changed by
// mutate before it is created.
func (e *env) podWith(name, networks string, mutate func(*corev1.Pod)) {
	e.t.Helper()
	zero := int64(0)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: e.namespace, Annotations: map[string]string{nadv1.NetworkAttachmentAnnot: networks}},
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: &zero,
			Containers: []corev1.Container{{
				Name: "workload", Image: workload, ImagePullPolicy: corev1.PullNever,
				Ports: []corev1.ContainerPort{{ContainerPort: 8080}},
			}},
		},
	}
	if mutate != nil {
		mutate(pod)
	}
	if _, err := e.kube.CoreV1().Pods(e.namespace).Create(e.t.Context(), pod, metav1.CreateOptions{}); err != nil {
		e.t.Fatalf("create pod %s: %v", name, err)
	}
}

// running waits until the pod runs and has its network-status, which braidd
// writes in the background just after ADD.
func (e *env) running(name string) *corev1.Pod {
	e.t.Helper()
	withStatus := framework.PodCheck{Desc: "be Running with a network-status", Met: func(p *corev1.Pod) (bool, error) {
		if ok, err := framework.PodRunning().Met(p); !ok || err != nil {
			return ok, err
		}
		_, ok := p.Annotations[nadv1.NetworkStatusAnnot]
		return ok, nil
	}}
	pod, err := framework.WaitForPod(e.t.Context(), e.kube, e.namespace, name, podTimeout, withStatus)
	if err != nil {
		e.t.Fatal(err)
	}
	return pod
}

// deletePod deletes a pod and waits until the kubelet has torn its network
// down: with grace 0 the API object goes before CNI DEL has run.
func (e *env) deletePod(ctx context.Context, name string) {
	pod, err := e.kube.CoreV1().Pods(e.namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		e.t.Errorf("get pod %s: %v", name, err)
		return
	}
	zero := int64(0)
	if err := e.kube.CoreV1().Pods(e.namespace).Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		e.t.Errorf("delete pod %s: %v", name, err)
		return
	}
	if err := framework.WaitForPodGone(ctx, e.kube, e.namespace, name, podTimeout); err != nil {
		e.t.Error(err)
	}
	if err := shared.node.WaitPodNetworkGone(ctx, pod.UID, podTimeout); err != nil {
		e.t.Error(err)
	}
}

func (e *env) deletePods(ctx context.Context) {
	pods, err := e.kube.CoreV1().Pods(e.namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return
	}
	for _, p := range pods.Items {
		e.deletePod(ctx, p.Name)
	}
}

// iface is what the workload reports of one interface.
type iface struct {
	Name  string   `json:"name"`
	MAC   string   `json:"mac"`
	Addrs []string `json:"addrs"`
}

// interfaces asks the workload in a pod, over its cluster IP, what it has.
func interfaces(t *testing.T, pod *corev1.Pod) []iface {
	t.Helper()
	return getJSON(t, fmt.Sprintf("http://%s:8080/interfaces", pod.Status.PodIP))
}

// dialFrom has pod `from` fetch the interfaces of the workload at addr.
func dialFrom(t *testing.T, from *corev1.Pod, addr string) ([]iface, error) {
	t.Helper()
	url := fmt.Sprintf("http://%s:8080/dial?addr=%s:8080", from.Status.PodIP, addr)
	return fetchJSON(url)
}

func getJSON(t *testing.T, url string) []iface {
	t.Helper()
	var out []iface
	var err error
	for i := 0; i < 20; i++ { // the workload may still be starting its server
		if out, err = fetchJSON(url); err == nil {
			return out
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("GET %s: %v", url, err)
	return nil
}

func fetchJSON(url string) ([]iface, error) {
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	var out []iface
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("decode %q: %w", body, err)
	}
	return out, nil
}

// networkStatus reads the pod's network-status annotation.
func networkStatus(t *testing.T, pod *corev1.Pod) []nadv1.NetworkStatus {
	t.Helper()
	var out []nadv1.NetworkStatus
	raw := pod.Annotations[nadv1.NetworkStatusAnnot]
	if err := json.Unmarshal([]byte(raw), &out); err != nil {
		t.Fatalf("pod %s network-status %q: %v", pod.Name, raw, err)
	}
	return out
}

// matchStatus checks network-status against what the pod itself sees.
func matchStatus(t *testing.T, pod *corev1.Pod, wantIfs []string) map[string]nadv1.NetworkStatus {
	t.Helper()
	statuses := networkStatus(t, pod)
	seen := interfaces(t, pod)
	byName := map[string]iface{}
	for _, i := range seen {
		byName[i.Name] = i
	}
	out := map[string]nadv1.NetworkStatus{}
	var got []string
	for _, st := range statuses {
		got = append(got, st.Interface)
		out[st.Interface] = st
		i, ok := byName[st.Interface]
		if !ok {
			t.Errorf("pod %s: network-status names %s, the pod has %v", pod.Name, st.Interface, names(seen))
			continue
		}
		if i.MAC != st.Mac {
			t.Errorf("pod %s %s: MAC %s in network-status, %s in the pod", pod.Name, st.Interface, st.Mac, i.MAC)
		}
		var have []string
		for _, a := range i.Addrs {
			if ip := strings.Split(a, "/")[0]; !strings.Contains(ip, ":") {
				have = append(have, ip)
			}
		}
		if !sameSet(have, st.IPs) {
			t.Errorf("pod %s %s: IPs %v in network-status, %v in the pod", pod.Name, st.Interface, st.IPs, have)
		}
	}
	if !sameSet(got, wantIfs) || !sameSet(names(seen), wantIfs) {
		t.Errorf("pod %s: network-status interfaces %v, pod interfaces %v, want %v", pod.Name, got, names(seen), wantIfs)
	}
	return out
}

func names(ifs []iface) []string {
	var out []string
	for _, i := range ifs {
		out = append(out, i.Name)
	}
	return out
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	sort.Strings(a)
	sort.Strings(b)
	return slices.Equal(a, b)
}

// leases lists the IPs host-local holds on a network.
func leases(network string) []string {
	entries, err := os.ReadDir(filepath.Join(shared.dataDir, network))
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		if e.Name() != "lock" && !strings.HasPrefix(e.Name(), "last_reserved_ip") {
			out = append(out, e.Name())
		}
	}
	return out
}

func deleteLink(name string) {
	if l, err := netlink.LinkByName(name); err == nil {
		_ = netlink.LinkDel(l)
	}
}

// journal lists braid's journal entries on the node (one per sandbox).
func journal() []string {
	entries, err := os.ReadDir(braidCNIDir)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		if e.Type().IsRegular() {
			out = append(out, e.Name())
		}
	}
	return out
}

// setNetworks patches a pod's networks annotation, as kubectl patch does.
func (e *env) setNetworks(name, networks string) {
	e.t.Helper()
	if err := framework.SetNetworks(e.t.Context(), e.kube, e.namespace, name, networks); err != nil {
		e.t.Fatal(err)
	}
}

// waitStatus waits until the pod's network-status lists exactly ifNames,
// in that order, and returns the pod.
func (e *env) waitStatus(name string, ifNames []string) *corev1.Pod {
	e.t.Helper()
	listed := framework.PodCheck{Desc: fmt.Sprintf("list interfaces %v in network-status", ifNames), Met: func(p *corev1.Pod) (bool, error) {
		var statuses []nadv1.NetworkStatus
		if err := json.Unmarshal([]byte(p.Annotations[nadv1.NetworkStatusAnnot]), &statuses); err != nil {
			return false, nil
		}
		got := make([]string, len(statuses))
		for i, s := range statuses {
			got[i] = s.Interface
		}
		return slices.Equal(got, ifNames), nil
	}}
	pod, err := framework.WaitForPod(e.t.Context(), e.kube, e.namespace, name, podTimeout, listed)
	if err != nil {
		e.t.Fatal(err)
	}
	return pod
}
