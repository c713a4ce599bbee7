package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"

	"github.com/braid-cni/braid/ctl"
	"github.com/braid-cni/braid/journal"
	"github.com/braid-cni/braid/plan"
)

// TestExplainMatchesAdd: braidctl explain, run against the API server
// before ADD, lists exactly the interfaces ADD then creates, in
// network-status order, and each delegate config and capability args it
// printed are the ones the delegate was run with (libcni's cache in
// braid's cniDir, and braid's journal); the default-route holder it names
// is the one network-status marks. A pod braid refuses: explain exits 1
// with the message ADD returns. In both modes: in thick mode braidd builds
// the plan from the shim's config.
func TestExplainMatchesAdd(t *testing.T) {
	inModes(t, func(t *testing.T, mode string) {
		explainMatchesAdd(t, mode)
	})
}

func explainMatchesAdd(t *testing.T, mode string) {
	n := newNode(t, mode, "1.0.0")
	master := n.hostVeth()
	n.createNAD(n.namespace, "blue", n.bridgeNet("blue", 1, true))
	green := map[string]any{
		"cniVersion": n.version,
		"name":       "green",
		"plugins": []any{
			n.bridgeNet("green", 2, false),
			map[string]any{"type": "tuning", "sysctl": map[string]any{"net.ipv4.conf.IFNAME.arp_notify": "1"}},
		},
	}
	n.createNAD(n.namespace, "green", green)
	writeJSON(t, filepath.Join(n.confDir, "filenet.conf"), n.bridgeNet("filenet", 3, false))
	n.createNAD(n.namespace, "filenet", nil)
	n.createNAD(n.namespace, "mv", n.macvlanStatic("mv", master))
	gw := fmt.Sprintf("10.201.%d.1", n.id)
	ann := fmt.Sprintf(`[
		{"name": "blue", "interface": "blue0", "cni-args": {"note": "x"}, "default-route": [%q]},
		{"name": "green"},
		{"name": "filenet", "namespace": %q},
		{"name": "mv", "interface": "data0", "ips": ["192.168.%d.10/24"], "mac": "02:00:00:00:%02x:01"}
	]`, gw, n.namespace, n.id, n.id)
	pod := n.createPod("explained", map[string]string{nadv1.NetworkAttachmentAnnot: ann})
	config := n.explainConfigFile()

	stdout, stderr, code := explainCtl(t, "explain", pod.Name, "-n", n.namespace, "--kubeconfig", shared.kubeconfig, "--config", config, "-o", "json")
	if code != 0 {
		t.Fatalf("explain: exit %d: %s", code, stderr)
	}
	var ex ctl.Explanation
	if err := json.Unmarshal([]byte(stdout), &ex); err != nil {
		t.Fatalf("explain -o json: %v\n%s", err, stdout)
	}

	sb := n.sandbox(pod)
	sb.mustAdd()

	var explained, networks []string
	for _, a := range ex.Attachments {
		explained, networks = append(explained, a.Interface), append(networks, a.Network)
	}
	if want := []string{"eth0", "blue0", "net2", "net3", "data0"}; !slices.Equal(explained, want) {
		t.Errorf("explain lists %v, want %v", explained, want)
	}
	inPod := keys(sb.links())
	sort.Strings(inPod)
	sortedExplained := slices.Sorted(slices.Values(explained))
	if !slices.Equal(inPod, sortedExplained) {
		t.Errorf("the pod has %v, explain listed %v", inPod, sortedExplained)
	}
	statuses := networkStatus(t, n.getPod(pod.Name))
	checkStatus(t, sb, statuses, networks, explained)
	for _, st := range statuses {
		if holds := ex.DefaultRoute[0].Interface == st.Interface; st.Default != holds {
			t.Errorf("network-status default flag of %s = %v, explain says the IPv4 default route is on %s", st.Interface, st.Default, ex.DefaultRoute[0].Interface)
		}
	}
	if ex.DefaultRoute[0].Gateway != gw {
		t.Errorf("explain's IPv4 default route %+v, want via %s", ex.DefaultRoute[0], gw)
	}

	journaled := n.explainJournal(sb.containerID)
	cache := libcni.NewCNIConfigWithCacheDir(nil, n.cniDir, nil)
	for i, a := range ex.Attachments {
		var named struct {
			Name string `json:"name"`
		}
		if err := json.Unmarshal(a.Config, &named); err != nil {
			t.Fatal(err)
		}
		ran, rt, err := cache.GetNetworkListCachedConfig(&libcni.NetworkConfigList{Name: named.Name}, &libcni.RuntimeConf{ContainerID: sb.containerID, IfName: a.Interface})
		if err != nil || ran == nil {
			t.Errorf("%s: no cached config for network %s: %v", a.Interface, named.Name, err)
			continue
		}
		if got, want := explainCompact(t, a.Config), explainCompact(t, ran); got != want {
			t.Errorf("%s: explain printed config\n%s\nthe delegate ran with\n%s", a.Interface, got, want)
		}
		if got, want := explainJSONText(t, a.CapabilityArgs), explainJSONText(t, rt.CapabilityArgs); got != want {
			t.Errorf("%s: explain printed capability args %s, the delegate got %s", a.Interface, got, want)
		}
		if got, want := explainCompact(t, a.Config), explainCompact(t, journaled.Attachments[i].Config); got != want {
			t.Errorf("%s: explain printed config\n%s\nthe journal holds\n%s", a.Interface, got, want)
		}
	}
	if ex.Attachments[4].CapabilityArgs["mac"] != fmt.Sprintf("02:00:00:00:%02x:01", n.id) {
		t.Errorf("data0 capability args %v, want the pod's mac", ex.Attachments[4].CapabilityArgs)
	}
	if !strings.Contains(explainCompact(t, ex.Attachments[1].Config), `"args":{"cni":{"note":"x"}}`) {
		t.Errorf("blue0 config lacks the pod's cni-args: %s", ex.Attachments[1].Config)
	}
	sb.mustDel()

	refused := n.createPod("refused", map[string]string{nadv1.NetworkAttachmentAnnot: "blue, nosuch"})
	stdout, stderr, code = explainCtl(t, "explain", refused.Name, "-n", n.namespace, "--kubeconfig", shared.kubeconfig, "--config", config)
	rsb := n.sandbox(refused)
	_, err := rsb.add()
	if err == nil {
		t.Fatal("ADD of a pod naming a missing NAD succeeded")
	}
	if code != 1 || stdout != "" {
		t.Errorf("explain of a refused pod: exit %d, stdout %q", code, stdout)
	}
	// libcni wraps the plugin's error with the plugin's name; the
	// *types.Error inside is what braid said.
	var addErr *types.Error
	if !errors.As(err, &addErr) {
		t.Fatalf("ADD error %v carries no CNI error", err)
	}
	if !strings.Contains(stderr, fmt.Sprintf("CNI error %d: %s\n", addErr.Code, addErr.Error())) {
		t.Errorf("explain said %q; ADD returned code %d: %q", stderr, addErr.Code, addErr.Error())
	}
	if cniCode(err) != types.ErrTryAgainLater {
		t.Errorf("ADD code %d, want 11", cniCode(err))
	}
}

// explainCtl runs braidctl in-process.
func explainCtl(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = ctl.Main(args, ctl.Streams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
	return out.String(), errOut.String(), code
}

// explainConfigFile writes the conflist the runtime hands braid, as a node's
// CNI config dir holds it.
func (n *node) explainConfigFile() string {
	n.t.Helper()
	path := filepath.Join(n.dir, "00-braid.conflist")
	writeJSON(n.t, path, map[string]any{"cniVersion": n.version, "name": "braid-net", "plugins": []any{n.braidConf}})
	return path
}

// explainJournal reads braid's journaled plan for a container.
func (n *node) explainJournal(containerID string) *plan.Plan {
	n.t.Helper()
	p, err := journal.New(n.cniDir).Load(containerID)
	if err != nil {
		n.t.Fatal(err)
	}
	return p
}

func explainCompact(t *testing.T, data []byte) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, data); err != nil {
		t.Fatalf("%s: %v", data, err)
	}
	return b.String()
}

func explainJSONText(t *testing.T, v map[string]any) string {
	t.Helper()
	if len(v) == 0 {
		return "{}"
	}
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
