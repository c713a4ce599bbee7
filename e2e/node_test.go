package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/containernetworking/plugins/pkg/testutils"
	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	nadclientset "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/client/clientset/versioned"
	"github.com/vishvananda/netlink"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/braid-cni/braid/e2e/framework"
)

// The modes every scenario runs in: the thin plugin, and the shim in front
// of braidd (thick).
const (
	thin  = "thin"
	thick = "thick"
)

// inModes runs body once per mode, as the subtests "thin" and "thick".
func inModes(t *testing.T, body func(t *testing.T, mode string)) {
	for _, mode := range []string{thin, thick} {
		t.Run(mode, func(t *testing.T) { body(t, mode) })
	}
}

// seq hands out small numbers for unique bridge names and subnets.
var seq atomic.Int32

// node is one simulated Kubernetes node: braid installed as the primary
// plugin, a cluster network (bridge + host-local), and a runtime driving
// braid through libcni, as containerd does.
type node struct {
	t          *testing.T
	id         int
	version    string
	dir        string
	confDir    string // braid's confDir
	cniDir     string // braid's journal and cache
	dataDir    string // host-local leases of every network
	runtimeDir string // the runtime's own libcni cache
	clusterBr  string
	kube       kubernetes.Interface
	nads       nadclientset.Interface
	namespace  string
	braidConf  map[string]any
	daemon     *daemon    // thick mode only
	mu         sync.Mutex // guards restarting daemon from concurrent runtime calls
}

func newNode(t *testing.T, mode, version string) *node {
	t.Helper()
	id := int(seq.Add(1))
	dir := t.TempDir()
	n := &node{
		t: t, id: id, version: version, dir: dir,
		confDir:    filepath.Join(dir, "net.d"),
		cniDir:     filepath.Join(dir, "braid"),
		dataDir:    filepath.Join(dir, "leases"),
		runtimeDir: filepath.Join(dir, "runtime-cache"),
		clusterBr:  fmt.Sprintf("brc%d", id),
		namespace:  fmt.Sprintf("e2e-%d", id),
	}
	for _, d := range []string{n.confDir, n.dataDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var err error
	n.kube, n.nads, err = shared.cp.Clients()
	if err != nil {
		t.Fatal(err)
	}
	if err := framework.CreateNamespaceWithSA(t.Context(), n.kube, n.namespace); err != nil {
		t.Fatal(err)
	}
	clusterPath := filepath.Join(dir, "10-cluster.conflist")
	writeJSON(t, clusterPath, n.clusterConfig())
	n.braidConf = map[string]any{
		"cniVersion":     version,
		"name":           "braid-net",
		"type":           "braid",
		"kubeconfig":     shared.kubeconfig,
		"confDir":        n.confDir,
		"cniDir":         n.cniDir,
		"binDir":         shared.pluginsDir,
		"clusterNetwork": clusterPath,
		"logFile":        filepath.Join(dir, "braid.log"),
		"logLevel":       "debug",
		"logToStderr":    false,
	}
	if mode == thick {
		// As braidd's autoconfig writes it: the shim, forwarding, with the
		// paths its DEL fallback needs; braidd's own config carries the
		// same settings (see runtime).
		n.daemon = startDaemon(t, dir, n.daemonSettings())
		n.braidConf["type"] = "braid-shim"
		n.braidConf["daemonSocketDir"] = n.daemon.SocketDir
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := framework.DeleteNamespaceObjects(ctx, n.kube, n.nads, n.namespace); err != nil {
			t.Logf("cleanup: %v", err)
		}
		deleteLink(n.clusterBr)
		if t.Failed() {
			if data, err := os.ReadFile(filepath.Join(dir, "braid.log")); err == nil {
				t.Logf("braid.log:\n%s", tail(string(data), 40))
			}
		}
	})
	return n
}

// subnet gives each node and purpose its own /24: 10.<200+purpose>.<id>.0/24.
func (n *node) subnet(purpose int) string {
	return fmt.Sprintf("10.%d.%d.0/24", 200+purpose, n.id)
}

func (n *node) clusterConfig() map[string]any {
	return map[string]any{
		"cniVersion": n.version,
		"name":       "cluster",
		"plugins": []any{map[string]any{
			"type":      "bridge",
			"bridge":    n.clusterBr,
			"isGateway": true,
			"ipam": map[string]any{
				"type":    "host-local",
				"dataDir": n.dataDir,
				"ranges":  []any{[]any{map[string]any{"subnet": n.subnet(0)}}},
				"routes":  []any{map[string]any{"dst": "0.0.0.0/0"}},
			},
		}},
	}
}

// bridgeNet is a secondary bridge network config with host-local IPAM.
func (n *node) bridgeNet(name string, purpose int, gateway bool) map[string]any {
	br := fmt.Sprintf("br%d-%d", purpose, n.id)
	n.t.Cleanup(func() { deleteLink(br) })
	return map[string]any{
		"cniVersion": n.version,
		"name":       name,
		"type":       "bridge",
		"bridge":     br,
		"isGateway":  gateway,
		"ipam": map[string]any{
			"type":    "host-local",
			"dataDir": n.dataDir,
			"ranges":  []any{[]any{map[string]any{"subnet": n.subnet(purpose)}}},
		},
	}
}

// macvlanStatic is a macvlan + tuning chain on master whose IPs (static
// IPAM) and MAC the pod asks for.
func (n *node) macvlanStatic(name, master string) map[string]any {
	return map[string]any{
		"cniVersion": n.version,
		"name":       name,
		"plugins": []any{
			map[string]any{
				"type": "macvlan", "master": master, "mode": "bridge",
				"capabilities": map[string]any{"ips": true},
				"ipam":         map[string]any{"type": "static"},
			},
			map[string]any{"type": "tuning", "capabilities": map[string]any{"mac": true}},
		},
	}
}

// createNAD creates a NetworkAttachmentDefinition in namespace; a nil config
// leaves spec.config empty.
func (n *node) createNAD(namespace, name string, config map[string]any) {
	n.t.Helper()
	obj := &nadv1.NetworkAttachmentDefinition{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace}}
	if config != nil {
		data, err := json.Marshal(config)
		if err != nil {
			n.t.Fatal(err)
		}
		obj.Spec.Config = string(data)
	}
	if _, err := n.nads.K8sCniCncfIoV1().NetworkAttachmentDefinitions(namespace).Create(n.t.Context(), obj, metav1.CreateOptions{}); err != nil {
		n.t.Fatalf("create NAD %s/%s: %v", namespace, name, err)
	}
}

// createPod creates a pod object (no kubelet runs it) with annotations.
func (n *node) createPod(name string, annotations map[string]string) *corev1.Pod {
	n.t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: n.namespace, Annotations: annotations},
		Spec: corev1.PodSpec{
			NodeName:   testNode, // braid's token is for this node
			Containers: []corev1.Container{{Name: "c", Image: "pause"}},
		},
	}
	got, err := n.kube.CoreV1().Pods(n.namespace).Create(n.t.Context(), pod, metav1.CreateOptions{})
	if err != nil {
		n.t.Fatalf("create pod %s: %v", name, err)
	}
	return got
}

func (n *node) getPod(name string) *corev1.Pod {
	n.t.Helper()
	pod, err := n.kube.CoreV1().Pods(n.namespace).Get(n.t.Context(), name, metav1.GetOptions{})
	if err != nil {
		n.t.Fatalf("get pod %s: %v", name, err)
	}
	return pod
}

// sandbox is a pod sandbox as the runtime sees it: a netns and a container ID.
type sandbox struct {
	n           *node
	pod         *corev1.Pod
	netns       ns.NetNS
	containerID string
}

func (n *node) sandbox(pod *corev1.Pod) *sandbox {
	n.t.Helper()
	netns, err := testutils.NewNS()
	if err != nil {
		n.t.Fatal(err)
	}
	n.t.Cleanup(func() {
		_ = netns.Close()
		_ = testutils.UnmountNS(netns)
	})
	return &sandbox{n: n, pod: pod, netns: netns, containerID: fmt.Sprintf("%s-%s-%d", "e2e", pod.Name, n.id)}
}

// testPlugin builds the test plugin e2e/testdata/plugins/<plugin> under
// each of the names into the node's test-plugins directory and returns it.
func (n *node) testPlugin(plugin string, names ...string) string {
	n.t.Helper()
	bin := filepath.Join(n.dir, "test-plugins")
	for _, name := range names {
		build := exec.Command("go", "build", "-o", filepath.Join(bin, name), "./e2e/testdata/plugins/"+plugin)
		build.Dir = shared.root
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			n.t.Fatalf("build test plugin %s: %v\n%s", plugin, err, out)
		}
	}
	return bin
}

// daemonSettings are the braid settings of braidConf that braidd's own
// config carries in thick mode: all but the runtime's keys, the shim's
// socket, and the API access and logging, which are the daemon's own.
func (n *node) daemonSettings() map[string]any {
	out := map[string]any{}
	for k, v := range n.braidConf {
		switch k {
		case "cniVersion", "name", "type", "capabilities", "runtimeConfig", "daemonSocketDir",
			"kubeconfig", "logFile", "logLevel", "logToStderr":
			continue
		}
		out[k] = v
	}
	return out
}

// runtime returns the libcni client and the runtime's config list for braid.
// In thick mode braidd is restarted first when a test changed braid's
// settings in braidConf since it started: its config is the only source of
// them.
func (n *node) runtime() (*libcni.CNIConfig, *libcni.NetworkConfigList) {
	n.t.Helper()
	n.mu.Lock()
	if n.daemon != nil && n.daemon.settings != nil {
		if want := n.daemonSettings(); !reflect.DeepEqual(want, n.daemon.settings) {
			n.daemon.restart(want)
		}
	}
	n.mu.Unlock()
	list := map[string]any{
		"cniVersion": n.version,
		"name":       "braid-net",
		"plugins":    []any{n.braidConf},
	}
	data, err := json.Marshal(list)
	if err != nil {
		n.t.Fatal(err)
	}
	conf, err := libcni.NetworkConfFromBytes(data)
	if err != nil {
		n.t.Fatal(err)
	}
	return libcni.NewCNIConfigWithCacheDir([]string{shared.braidDir}, n.runtimeDir, nil), conf
}

func (s *sandbox) rt() *libcni.RuntimeConf {
	return framework.SandboxConf(s.pod, s.containerID, s.netns.Path())
}

// add runs ADD as the runtime does. In thick mode it then waits until
// braidd has written the network-status it queued, so callers read it.
func (s *sandbox) add() (*current.Result, error) {
	c, list := s.n.runtime()
	res, err := c.AddNetworkList(s.n.t.Context(), list, s.rt())
	if err != nil {
		return nil, err
	}
	if s.n.daemon != nil {
		s.n.daemon.waitStatusWritten()
	}
	return current.NewResultFromResult(res)
}

func (s *sandbox) mustAdd() *current.Result {
	s.n.t.Helper()
	res, err := s.add()
	if err != nil {
		s.n.t.Fatalf("ADD %s: %v", s.containerID, err)
	}
	return res
}

func (s *sandbox) del() error {
	c, list := s.n.runtime()
	return c.DelNetworkList(context.Background(), list, s.rt())
}

func (s *sandbox) mustDel() {
	s.n.t.Helper()
	if err := s.del(); err != nil {
		s.n.t.Fatalf("DEL %s: %v", s.containerID, err)
	}
}

func (s *sandbox) check() error {
	c, list := s.n.runtime()
	return c.CheckNetworkList(s.n.t.Context(), list, s.rt())
}

// links lists the interfaces in the sandbox (without lo), by name.
func (s *sandbox) links() map[string]netlink.Link {
	s.n.t.Helper()
	out := map[string]netlink.Link{}
	err := s.netns.Do(func(ns.NetNS) error {
		links, err := netlink.LinkList()
		if err != nil {
			return err
		}
		for _, l := range links {
			if l.Attrs().Name != "lo" {
				out[l.Attrs().Name] = l
			}
		}
		return nil
	})
	if err != nil {
		s.n.t.Fatal(err)
	}
	return out
}

// addrs lists the IPv4 addresses (CIDR) of one interface in the sandbox.
func (s *sandbox) addrs(ifName string) []string {
	s.n.t.Helper()
	var out []string
	err := s.netns.Do(func(ns.NetNS) error {
		l, err := netlink.LinkByName(ifName)
		if err != nil {
			return err
		}
		addrs, err := netlink.AddrList(l, netlink.FAMILY_V4)
		for _, a := range addrs {
			out = append(out, a.IPNet.String())
		}
		return err
	})
	if err != nil {
		s.n.t.Fatalf("addresses of %s: %v", ifName, err)
	}
	return out
}

// leases lists the IPs host-local holds for a network, in every node's
// lease directory.
func (n *node) leases(network string) []string {
	entries, err := os.ReadDir(filepath.Join(n.dataDir, network))
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		if e.Name() == "lock" || strings.HasPrefix(e.Name(), "last_reserved_ip") {
			continue
		}
		out = append(out, e.Name())
	}
	return out
}

// journal lists braid's journal entries.
func (n *node) journal() []string {
	entries, err := os.ReadDir(n.cniDir)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		if !e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out
}

// cniCode returns the CNI error code of err, or 0.
func cniCode(err error) uint {
	var te *types.Error
	if errors.As(err, &te) {
		return te.Code
	}
	return 0
}

func writeJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func deleteLink(name string) {
	if l, err := netlink.LinkByName(name); err == nil {
		_ = netlink.LinkDel(l)
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// hostVeth creates a veth pair on the host and returns the name of the end
// that serves as a macvlan master (this kernel has no dummy module).
func (n *node) hostVeth() string {
	n.t.Helper()
	name := fmt.Sprintf("mvm%d", n.id)
	la := netlink.NewLinkAttrs()
	la.Name = name
	veth := &netlink.Veth{LinkAttrs: la, PeerName: fmt.Sprintf("mvp%d", n.id)}
	if err := netlink.LinkAdd(veth); err != nil {
		n.t.Fatalf("create veth %s: %v", name, err)
	}
	n.t.Cleanup(func() { deleteLink(name) })
	for _, l := range []string{name, veth.PeerName} {
		link, err := netlink.LinkByName(l)
		if err == nil {
			err = netlink.LinkSetUp(link)
		}
		if err != nil {
			n.t.Fatalf("set %s up: %v", l, err)
		}
	}
	return name
}

// deleteLinkIn removes an interface inside the sandbox.
func deleteLinkIn(t *testing.T, sb *sandbox, name string) {
	t.Helper()
	err := sb.netns.Do(func(ns.NetNS) error {
		l, err := netlink.LinkByName(name)
		if err != nil {
			return err
		}
		return netlink.LinkDel(l)
	})
	if err != nil {
		t.Fatalf("delete %s in the pod: %v", name, err)
	}
}

// deleteNAD removes a NAD outside the node's own namespace at cleanup.
func (n *node) deleteNAD(namespace, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = n.nads.K8sCniCncfIoV1().NetworkAttachmentDefinitions(namespace).Delete(ctx, name, metav1.DeleteOptions{})
}
