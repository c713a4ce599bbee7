package lint

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/version"
)

// nadYAML is a NAD named name whose spec.config is config, with extra
// metadata lines (indented by two spaces) when given.
func nadYAML(name, config, meta string) string {
	return fmt.Sprintf(`apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata:
  name: %s
  namespace: ns1
%sspec:
  config: '%s'
`, name, meta, config)
}

// podYAML is pod "app" in ns1 selecting networks.
func podYAML(networks string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: app
  namespace: ns1
  annotations:
    k8s.v1.cni.cncf.io/networks: '%s'
spec: {}
`, networks)
}

const (
	blue  = `{"cniVersion": "1.0.0", "name": "blue", "type": "bridge", "ipam": {"type": "host-local"}}`
	green = `{"cniVersion": "1.0.0", "name": "green", "plugins": [{"type": "bridge"}, {"type": "tuning", "capabilities": {"mac": true}}]}`
	netsA = "metadata.annotations[k8s.v1.cni.cncf.io/networks]"
)

func TestLintFindsEachMistake(t *testing.T) {
	withBlue := nadYAML("blue", blue, "") + "---\n"
	tests := []struct {
		name     string
		manifest string
		want     Finding // File, Kind, Object, Field, Severity; Message checked by prefix
	}{
		{"config not JSON", nadYAML("net", `{"cniVersion": "1.0.0",}`, ""),
			Finding{Kind: "NetworkAttachmentDefinition", Object: "ns1/net", Field: "spec.config", Severity: Error, Message: "is not valid JSON"}},
		{"config not an object", nadYAML("net", `"bridge"`, ""),
			Finding{Kind: "NetworkAttachmentDefinition", Object: "ns1/net", Field: "spec.config", Severity: Error, Message: "is not a JSON object"}},
		{"config null", nadYAML("net", `null`, ""),
			Finding{Kind: "NetworkAttachmentDefinition", Object: "ns1/net", Field: "spec.config", Severity: Error, Message: "is not a JSON object"}},
		{"config empty", nadYAML("net", ``, ""),
			Finding{Kind: "NetworkAttachmentDefinition", Object: "ns1/net", Field: "spec.config", Severity: Warning, Message: "is empty: braid then reads the config named \"net\""}},
		{"cniVersion unsupported", nadYAML("net", `{"cniVersion": "0.9.9", "name": "n", "type": "bridge"}`, ""),
			Finding{Kind: "NetworkAttachmentDefinition", Object: "ns1/net", Field: "spec.config.cniVersion", Severity: Error, Message: `"0.9.9" is not a CNI spec version`}},
		{"cniVersion missing", nadYAML("net", `{"name": "n", "type": "bridge"}`, ""),
			Finding{Kind: "NetworkAttachmentDefinition", Object: "ns1/net", Field: "spec.config.cniVersion", Severity: Warning, Message: "is not set"}},
		{"conflist without plugins", nadYAML("net", `{"cniVersion": "1.0.0", "name": "n", "plugins": []}`, ""),
			Finding{Kind: "NetworkAttachmentDefinition", Object: "ns1/net", Field: "spec.config.plugins", Severity: Error, Message: "is empty"}},
		{"plugins not a list", nadYAML("net", `{"cniVersion": "1.0.0", "name": "n", "plugins": "bridge"}`, ""),
			Finding{Kind: "NetworkAttachmentDefinition", Object: "ns1/net", Field: "spec.config.plugins", Severity: Error, Message: "is a string, not a list"}},
		{"plugin not an object", nadYAML("net", `{"cniVersion": "1.0.0", "name": "n", "plugins": [{"type": "bridge"}, 3]}`, ""),
			Finding{Kind: "NetworkAttachmentDefinition", Object: "ns1/net", Field: "spec.config.plugins[1]", Severity: Error, Message: "is a number"}},
		{"plugin without type", nadYAML("net", `{"cniVersion": "1.0.0", "name": "n", "plugins": [{"type": "bridge"}, {"mtu": 1400}]}`, ""),
			Finding{Kind: "NetworkAttachmentDefinition", Object: "ns1/net", Field: "spec.config.plugins[1].type", Severity: Error, Message: "is required"}},
		{"config without type", nadYAML("net", `{"cniVersion": "1.0.0", "name": "n"}`, ""),
			Finding{Kind: "NetworkAttachmentDefinition", Object: "ns1/net", Field: "spec.config.type", Severity: Error, Message: "is required"}},
		{"config without name: braid fills it", nadYAML("net", `{"cniVersion": "1.0.0", "type": "bridge"}`, ""),
			Finding{Kind: "NetworkAttachmentDefinition", Object: "ns1/net", Field: "spec.config.name", Severity: Info, Message: `is not set: braid names the network "net"`}},
		{"config name not a string", nadYAML("net", `{"cniVersion": "1.0.0", "name": true, "type": "bridge"}`, ""),
			Finding{Kind: "NetworkAttachmentDefinition", Object: "ns1/net", Field: "spec.config.name", Severity: Error, Message: "is a boolean, not a string"}},
		{"NAD name not DNS-1123", nadYAML("Net_1", blue, ""),
			Finding{Kind: "NetworkAttachmentDefinition", Object: "ns1/Net_1", Field: "metadata.name", Severity: Error, Message: `"Net_1" is not a DNS-1123 subdomain`}},
		{"resourceName without domain", nadYAML("net", blue, "  annotations:\n    k8s.v1.cni.cncf.io/resourceName: sriov\n"),
			Finding{Kind: "NetworkAttachmentDefinition", Object: "ns1/net", Field: "metadata.annotations[k8s.v1.cni.cncf.io/resourceName]", Severity: Error, Message: `"sriov" is not an extended resource name`}},
		{"skip-default-networks neither true nor false", withBlue + strings.Replace(podYAML(`blue`), "  annotations:\n", "  annotations:\n    braid-cni.io/skip-default-networks: 'yes'\n", 1),
			Finding{Kind: "Pod", Object: "ns1/app", Field: "metadata.annotations[braid-cni.io/skip-default-networks]", Severity: Error, Message: "annotation braid-cni.io/skip-default-networks: \"yes\" is neither"}},
		{"annotation does not parse", withBlue + podYAML(`[{"name": "blue"`),
			Finding{Kind: "Pod", Object: "ns1/app", Field: netsA, Severity: Error, Message: "networks annotation"}},
		{"interface repeated", withBlue + podYAML(`blue@net9, blue@net9`),
			Finding{Kind: "Pod", Object: "ns1/app", Field: netsA + "[1].interface", Severity: Error, Message: `"net9" is already used by element 1`}},
		{"interface with a slash", withBlue + podYAML(`[{"name": "blue", "interface": "a/b"}]`),
			Finding{Kind: "Pod", Object: "ns1/app", Field: netsA + "[0].interface", Severity: Error, Message: `"a/b" contains '/' or ':'`}},
		{"two IPv4 default routes", withBlue + nadYAML("green", green, "") + "---\n" + podYAML(`[{"name": "blue", "default-route": ["10.0.0.1"]}, {"name": "green", "default-route": ["10.0.1.1"]}]`),
			Finding{Kind: "Pod", Object: "ns1/app", Field: netsA + "[1].default-route", Severity: Error}},
		{"NAD not linted", podYAML(`other/red`),
			Finding{Kind: "Pod", Object: "ns1/app", Field: netsA + "[0].name", Severity: Warning, Message: "network-attachment-definition other/red is not among the linted files"}},
		{"mac not declared", withBlue + podYAML(`[{"name": "blue", "mac": "02:00:00:00:00:01"}]`),
			Finding{Kind: "Pod", Object: "ns1/app", Field: netsA + "[0].mac", Severity: Error, Message: `no plugin of network ns1/blue (bridge) declares capability "mac"`}},
		{"deviceID not declared", withBlue + podYAML(`[{"name": "blue", "deviceID": "0000:03:00.1"}]`),
			Finding{Kind: "Pod", Object: "ns1/app", Field: netsA + "[0].deviceID", Severity: Error, Message: `no plugin of network ns1/blue (bridge) declares capability "deviceID"`}},
		{"ips in a Deployment's template", withBlue + `apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: ns1}
spec:
  template:
    metadata:
      annotations:
        k8s.v1.cni.cncf.io/networks: '[{"name": "blue", "ips": ["10.1.1.1/24"]}]'
`, Finding{Kind: "Deployment", Object: "ns1/web", Field: "spec.template." + netsA + "[0].ips", Severity: Error, Message: `no plugin of network ns1/blue (bridge) declares capability "ips"`}},
		{"config written as a mapping", `apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata: {name: net, namespace: ns1}
spec:
  config:
    cniVersion: 1.0.0
    type: bridge
`, Finding{Kind: "NetworkAttachmentDefinition", Object: "ns1/net", Field: "spec.config", Severity: Error, Message: "is an object, not a string"}},
		{"metadata of the wrong type", "apiVersion: v1\nkind: Pod\nmetadata: {name: [x]}\n",
			Finding{Kind: "Pod", Object: "(document #1)", Field: "-", Severity: Error, Message: "cannot decode"}},
		{"typed list", `{"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinitionList", "items": [` +
			`{"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition", "metadata": {"name": "net", "namespace": "ns1"}, "spec": {"config": "{\"name\": \"net\", \"type\": \"bridge\"}"}}]}`,
			Finding{Kind: "NetworkAttachmentDefinition", Object: "ns1/net", Field: "spec.config.cniVersion", Severity: Warning, Message: "is not set"}},
		{"device-backed networks without the devices", nadYAML("vf", `{"cniVersion": "1.0.0", "name": "vf", "type": "sriov"}`, "  annotations: {k8s.v1.cni.cncf.io/resourceName: intel.com/sriov}\n") + `---
apiVersion: v1
kind: Pod
metadata:
  name: app
  namespace: ns1
  annotations:
    k8s.v1.cni.cncf.io/networks: 'vf, vf@vf2'
spec:
  containers:
    - {name: a, resources: {limits: {intel.com/sriov: "1"}}}
`, Finding{Kind: "Pod", Object: "ns1/app", Field: "spec.containers[].resources.limits[intel.com/sriov]", Severity: Error, Message: "2 device-backed network(s) need a device of intel.com/sriov each (ns1/vf, ns1/vf), the containers request 1: braid would refuse the pod"}},
		{"NAD running braid", nadYAML("evil", `{"cniVersion": "1.0.0", "name": "evil", "type": "braid", "binDir": "/tmp/x"}`, ""),
			Finding{Kind: "NetworkAttachmentDefinition", Object: "ns1/evil", Field: "spec.config.type", Severity: Error, Message: `is "braid", which is braid itself`}},
		{"NAD with braid-shim second in a conflist", nadYAML("evil", `{"cniVersion": "1.0.0", "name": "evil", "plugins": [{"type": "bridge"}, {"type": "braid-shim"}]}`, ""),
			Finding{Kind: "NetworkAttachmentDefinition", Object: "ns1/evil", Field: "spec.config.plugins[1].type", Severity: Error, Message: `is "braid-shim", which is braid itself`}},
		{"NAD with braid as IPAM", nadYAML("evil", `{"cniVersion": "1.0.0", "name": "evil", "type": "bridge", "ipam": {"type": "braid"}}`, ""),
			Finding{Kind: "NetworkAttachmentDefinition", Object: "ns1/evil", Field: "spec.config.ipam.type", Severity: Error, Message: `is "braid", which is braid itself`}},
		{"more networks than braid allows", withBlue + podYAML(strings.TrimSuffix(strings.Repeat("blue, ", 33), ", ")),
			Finding{Kind: "Pod", Object: "ns1/app", Field: netsA, Severity: Error, Message: "33 networks requested, more than the 32 a pod may have (maxNetworksPerPod): braid would refuse the pod"}},
		{"not YAML", "a: [b\n",
			Finding{Kind: "document", Object: "#1", Field: "-", Severity: Error, Message: "not valid YAML"}},
		{"no kind", "metadata: {name: x}\n",
			Finding{Kind: "document", Object: "#1", Field: "-", Severity: Error, Message: "not a Kubernetes object"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Lint(context.Background(), []Input{{Name: "m.yaml", Data: []byte(tt.manifest)}}, Options{})
			if len(got) != 1 {
				t.Fatalf("want exactly one finding, got %d:\n%s", len(got), text(got))
			}
			f := got[0]
			if f.File != "m.yaml" || f.Kind != tt.want.Kind || f.Object != tt.want.Object || f.Field != tt.want.Field || f.Severity != tt.want.Severity {
				t.Errorf("got  %s\nwant %s", f, Finding{File: "m.yaml", Kind: tt.want.Kind, Object: tt.want.Object, Field: tt.want.Field, Severity: tt.want.Severity, Message: tt.want.Message + "..."})
			}
			if !strings.HasPrefix(f.Message, tt.want.Message) {
				t.Errorf("message %q does not start with %q", f.Message, tt.want.Message)
			}
		})
	}
}

func TestLintAcceptsGoodManifests(t *testing.T) {
	docs := nadYAML("blue", blue, "") + "---\n" + nadYAML("green", green, "") + "---\n# only a comment\n---\n" +
		podYAML(`[{"name": "green", "interface": "data0", "mac": "02:00:00:00:00:01"}, {"name": "blue", "default-route": ["10.0.0.1"]}]`) +
		"---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: ignored}\n"
	list := `{"apiVersion": "v1", "kind": "List", "items": [` +
		`{"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition", "metadata": {"name": "red", "namespace": "ns1"}, "spec": {"config": "{\"cniVersion\": \"0.4.0\", \"name\": \"red\", \"type\": \"macvlan\"}"}}]}`
	// Device-backed networks with a device each, requested across two
	// containers, one through requests only; deviceID picks one of them.
	devs := nadYAML("vf", `{"cniVersion": "1.0.0", "name": "vf", "type": "sriov"}`, "  annotations: {k8s.v1.cni.cncf.io/resourceName: intel.com/sriov}\n") + `---
apiVersion: v1
kind: Pod
metadata:
  name: vfs
  namespace: ns1
  annotations:
    k8s.v1.cni.cncf.io/networks: '[{"name": "vf"}, {"name": "vf", "interface": "vf2", "deviceID": "0000:3b:02.1"}]'
spec:
  containers:
    - {name: a, resources: {limits: {intel.com/sriov: "1"}}}
    - {name: b, resources: {requests: {intel.com/sriov: "1"}}}
`
	got := Lint(context.Background(), []Input{{Name: "a.yaml", Data: []byte(docs)}, {Name: "b.json", Data: []byte(list)}, {Name: "c.yaml", Data: []byte(devs)}}, Options{})
	if len(got) != 0 {
		t.Fatalf("want no findings, got:\n%s", text(got))
	}
}

func TestLintOrdersByFileThenDocument(t *testing.T) {
	first := nadYAML("a", `{"cniVersion": "1.0.0", "name": "a"}`, "") + "---\n" + podYAML("missing")
	second := nadYAML("b", `x`, "")
	// The pod of the first file selects a NAD of the second: NADs are
	// collected first, yet findings keep file and document order.
	got := Lint(context.Background(), []Input{{Name: "1.yaml", Data: []byte(first)}, {Name: "2.yaml", Data: []byte(second)}}, Options{})
	var fields []string
	for _, f := range got {
		fields = append(fields, f.File+" "+f.Field)
	}
	want := []string{"1.yaml spec.config.type", "1.yaml " + netsA + "[0].name", "2.yaml spec.config"}
	if strings.Join(fields, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(fields, "\n"), strings.Join(want, "\n"))
	}
	if !HasErrors(got) {
		t.Error("HasErrors: false, want true")
	}
	if HasErrors(got[1:2]) {
		t.Error("HasErrors of a warning alone: true, want false")
	}
}

// fakeExec answers FindInPath and VERSION from maps.
type fakeExec struct {
	versions map[string][]string // plugin type -> supported versions
	calls    int
}

func (f *fakeExec) ExecPlugin(_ context.Context, path string, _ []byte, environ []string) ([]byte, error) {
	f.calls++
	typ := path[strings.LastIndex(path, "/")+1:]
	var b strings.Builder
	if err := version.PluginSupports(f.versions[typ]...).Encode(&b); err != nil {
		return nil, err
	}
	return []byte(b.String()), nil
}

func (f *fakeExec) FindInPath(plugin string, paths []string) (string, error) {
	if _, ok := f.versions[plugin]; !ok {
		return "", errors.New("not found")
	}
	return paths[0] + "/" + plugin, nil
}

func (f *fakeExec) Decode(jsonBytes []byte) (version.PluginInfo, error) {
	return (&version.PluginDecoder{}).Decode(jsonBytes)
}

func TestLintBinaries(t *testing.T) {
	exec := &fakeExec{versions: map[string][]string{
		"bridge":     {"0.4.0", "1.0.0"},
		"host-local": {"0.4.0"}, // too old for 1.0.0
	}}
	manifest := nadYAML("blue", blue, "") + "---\n" + nadYAML("green", green, "")
	got := Lint(context.Background(), []Input{{Name: "m.yaml", Data: []byte(manifest)}}, Options{BinDirs: []string{"/opt/cni/bin", "/x"}, Exec: exec})
	want := []string{
		`m.yaml: NetworkAttachmentDefinition ns1/blue: spec.config.ipam.type: error: plugin "host-local" (/opt/cni/bin/host-local) does not support cniVersion "1.0.0" (it supports 0.4.0)`,
		`m.yaml: NetworkAttachmentDefinition ns1/green: spec.config.plugins[1].type: error: plugin "tuning": no binary in /opt/cni/bin:/x`,
	}
	if text(got) != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", text(got), strings.Join(want, "\n"))
	}
	if exec.calls != 2 {
		t.Errorf("VERSION calls: %d, want 2 (bridge answered once for both NADs)", exec.calls)
	}
}

func text(fs []Finding) string {
	var b strings.Builder
	_ = WriteText(&b, fs)
	return strings.TrimSuffix(b.String(), "\n")
}
