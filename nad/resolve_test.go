package nad_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	"github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/client/clientset/versioned/fake"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/braid-cni/braid/internal/testutil"
	"github.com/braid-cni/braid/kube"
	"github.com/braid-cni/braid/nad"
)

// Configs used across the tests. They are indented on purpose: what the
// resolver returns must be the same document, compacted or not.
const (
	bridgeConf = `{
		"cniVersion": "1.0.0",
		"name": "blue",
		"type": "bridge",
		"bridge": "br-blue",
		"mtu": 18446744073709551615
	}`
	bridgeConfNoName = `{
		"cniVersion": "1.0.0",
		"type": "bridge",
		"bridge": "br-red"
	}`
	tuningList = `{
		"cniVersion": "1.0.0",
		"name": "green",
		"plugins": [
			{"type": "macvlan", "master": "eth1"},
			{"type": "tuning", "sysctl": {"net.ipv4.conf.IFNAME.arp_filter": "1"}}
		]
	}`
	tuningListNoName = `{
		"cniVersion": "1.0.0",
		"plugins": [{"type": "macvlan", "master": "eth2"}]
	}`
	fileConf     = `{"cniVersion":"0.4.0","name":"from-file","type":"host-device","device":"eth3"}`
	fileConflist = `{"cniVersion":"1.0.0","name":"from-list","plugins":[{"type":"ipvlan","master":"eth4"}]}`
)

// getterFunc adapts a function to nad.Getter.
type getterFunc func(ctx context.Context, namespace, name string) (*nadv1.NetworkAttachmentDefinition, error)

func (f getterFunc) GetNAD(ctx context.Context, namespace, name string) (*nadv1.NetworkAttachmentDefinition, error) {
	return f(ctx, namespace, name)
}

var _ nad.Getter = getterFunc(nil)

var _ nad.Getter = (*kube.Clients)(nil)

// failing is a getter whose API server answers with an error other than
// NotFound.
func failing(msg string) nad.Getter {
	return getterFunc(func(context.Context, string, string) (*nadv1.NetworkAttachmentDefinition, error) {
		return nil, errors.New(msg)
	})
}

func newNAD(namespace, name, config string) *nadv1.NetworkAttachmentDefinition {
	return &nadv1.NetworkAttachmentDefinition{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec:       nadv1.NetworkAttachmentDefinitionSpec{Config: config},
	}
}

// fakeAPI is a NAD getter backed by the NAD client's generated fake
// clientset, the same code path as the thin plugin's live GETs.
//
// The objects are created through the typed client: objects handed to
// NewSimpleClientset are filed under the guessed resource
// "networkattachmentdefinitions", which the client's GET for
// "network-attachment-definitions" never finds.
func fakeAPI(t *testing.T, nads ...*nadv1.NetworkAttachmentDefinition) nad.Getter {
	t.Helper()
	cs := fake.NewSimpleClientset()
	for _, n := range nads {
		_, err := cs.K8sCniCncfIoV1().NetworkAttachmentDefinitions(n.Namespace).Create(context.Background(), n, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("create NAD %s/%s: %v", n.Namespace, n.Name, err)
		}
	}
	return &kube.Clients{NADs: cs}
}

// writeFiles writes name -> content into a new temp dir and returns it.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// withName returns the document conf with "name" set, decoded.
func withName(t *testing.T, conf, name string) any {
	t.Helper()
	doc := testutil.Decode(t, []byte(conf)).(map[string]any)
	doc["name"] = name
	return doc
}

func TestResolverNAD(t *testing.T) {
	confDir := writeFiles(t, map[string]string{
		"10-from-file.conf":     fileConf,
		"20-from-list.conflist": fileConflist,
		"30-other.conf":         `{"cniVersion":"1.0.0","name":"other","type":"bridge"}`,
	})
	api := fakeAPI(t,
		newNAD("ns", "blue", bridgeConf),
		newNAD("ns", "red", bridgeConfNoName),
		newNAD("ns", "green", tuningList),
		newNAD("ns", "yellow", tuningListNoName),
		newNAD("ns", "from-file", ""),
		newNAD("ns", "from-list", "  \n\t"),
		newNAD("ns", "nofile", ""),
		newNAD("ns", "broken", `{"cniVersion": "1.0.0", "type": `),
		newNAD("ns", "nulled", `null`),
		newNAD("ns", "listed", `[{"type":"bridge"}]`),
		newNAD("other", "blue", `{"cniVersion":"1.0.0","name":"other-blue","type":"vlan"}`),
	)

	tests := []struct {
		name      string
		getter    nad.Getter
		namespace string
		nad       string
		// wantExact is compared after compaction: the bytes must be the
		// NAD's own, not re-encoded.
		wantExact string
		// wantDoc is compared as a decoded document, for configs whose
		// name braid had to add.
		wantDoc  any
		wantCode uint
		wantMsg  []string
	}{
		{name: "spec conf with name", getter: api, namespace: "ns", nad: "blue", wantExact: bridgeConf},
		{name: "spec conflist with name", getter: api, namespace: "ns", nad: "green", wantExact: tuningList},
		{name: "namespace selects the NAD", getter: api, namespace: "other", nad: "blue", wantExact: `{"cniVersion":"1.0.0","name":"other-blue","type":"vlan"}`},
		{name: "spec conf without name gets the NAD name", getter: api, namespace: "ns", nad: "red", wantDoc: withName(t, bridgeConfNoName, "red")},
		{name: "spec conflist without name gets the NAD name", getter: api, namespace: "ns", nad: "yellow", wantDoc: withName(t, tuningListNoName, "yellow")},
		{name: "empty spec reads conf file by name", getter: api, namespace: "ns", nad: "from-file", wantExact: fileConf},
		{name: "blank spec reads conflist file by name", getter: api, namespace: "ns", nad: "from-list", wantExact: fileConflist},
		{name: "empty spec and no file", getter: api, namespace: "ns", nad: "nofile", wantCode: types.ErrTryAgainLater, wantMsg: []string{"ns/nofile", `"nofile"`, confDir}},
		{name: "NAD not found", getter: api, namespace: "ns", nad: "missing", wantCode: types.ErrTryAgainLater, wantMsg: []string{"network-attachment-definition ns/missing not found"}},
		{name: "NAD in another namespace only", getter: api, namespace: "other", nad: "green", wantCode: types.ErrTryAgainLater, wantMsg: []string{"other/green"}},
		{name: "API error", getter: failing("connection refused"), namespace: "ns", nad: "blue", wantCode: types.ErrTryAgainLater, wantMsg: []string{"ns/blue", "connection refused"}},
		{name: "invalid JSON in spec", getter: api, namespace: "ns", nad: "broken", wantCode: types.ErrInvalidNetworkConfig, wantMsg: []string{"ns/broken", "spec.config"}},
		{name: "null spec", getter: api, namespace: "ns", nad: "nulled", wantCode: types.ErrInvalidNetworkConfig, wantMsg: []string{"ns/nulled", "spec.config"}},
		{name: "list spec", getter: api, namespace: "ns", nad: "listed", wantCode: types.ErrInvalidNetworkConfig, wantMsg: []string{"ns/listed", "spec.config"}},
		{name: "no API access", getter: nil, namespace: "ns", nad: "blue", wantCode: types.ErrTryAgainLater, wantMsg: []string{"ns/blue", "kubeconfig"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &nad.Resolver{NADs: tt.getter, ConfDir: confDir}
			got, err := r.NAD(context.Background(), tt.namespace, tt.nad)
			if tt.wantCode != 0 {
				if got != nil {
					t.Errorf("got network %+v with the error", got)
				}
				testutil.WantCNIError(t, err, tt.wantCode, tt.wantMsg...)
				return
			}
			if err != nil {
				t.Fatalf("NAD: %v", err)
			}
			if want := tt.namespace + "/" + tt.nad; got.Name != want {
				t.Errorf("Name %q, want %q", got.Name, want)
			}
			if got.NAD == nil || got.NAD.Namespace != tt.namespace || got.NAD.Name != tt.nad {
				t.Errorf("NAD %+v, want the object %s/%s", got.NAD, tt.namespace, tt.nad)
			}
			if tt.wantExact != "" {
				if g, w := testutil.Compact(t, got.Config), testutil.Compact(t, []byte(tt.wantExact)); g != w {
					t.Errorf("Config\n got %s\nwant %s", g, w)
				}
			}
			if tt.wantDoc != nil {
				if g := testutil.Decode(t, got.Config); !reflect.DeepEqual(g, tt.wantDoc) {
					t.Errorf("Config\n got %#v\nwant %#v", g, tt.wantDoc)
				}
			}
		})
	}
}

func TestResolverClusterNetwork(t *testing.T) {
	const (
		calicoList = `{"cniVersion":"1.0.0","name":"calico","plugins":[{"type":"calico"},{"type":"portmap","capabilities":{"portMappings":true}}]}`
		flannel    = `{"cniVersion":"0.3.1","name":"flannel","type":"flannel"}`
		nadCluster = `{"cniVersion":"1.0.0","name":"cluster-from-nad","type":"ptp"}`
	)
	confDir := writeFiles(t, map[string]string{
		"10-flannel.conf":    flannel,
		"05-calico.conflist": calicoList,
		"00-notes.txt":       "not a config",
	})
	// Broken files live apart: the NAD client's lookup by name stops at
	// the first file it cannot load.
	badDir := writeFiles(t, map[string]string{
		"20-unnamed.conflist": `{"cniVersion":"1.0.0","plugins":[{"type":"ptp"}]}`,
		"21-empty-name.conf":  `{"cniVersion":"1.0.0","name":"","type":"ptp"}`,
		"22-name-number.conf": `{"cniVersion":"1.0.0","name":1,"type":"ptp"}`,
	})
	emptyDir := t.TempDir()
	withBraid := writeFiles(t, map[string]string{
		"00-braid.conflist": `{"cniVersion":"1.0.0","name":"braid-net","plugins":[{"type":"braid","clusterNetwork":"/etc/cni/net.d"}]}`,
		"01-braid.conf":     `{"cniVersion":"1.0.0","name":"braid-old","type":"braid"}`,
		"02-shim.conflist":  `{"cniVersion":"1.0.0","name":"braid-thick","plugins":[{"type":"braid-shim"}]}`,
		"10-flannel.conf":   flannel,
	})
	onlyBraid := writeFiles(t, map[string]string{
		"00-braid.conflist": `{"cniVersion":"1.0.0","name":"braid-net","plugins":[{"type":"braid"}]}`,
	})
	api := fakeAPI(t, newNAD("kube-system", "flannel", nadCluster))

	tests := []struct {
		name      string
		getter    nad.Getter
		namespace string
		ref       string
		wantName  string
		wantConf  string
		wantNAD   bool
		wantCode  uint
		wantMsg   []string
	}{
		{name: "absolute file path", getter: api, namespace: "kube-system", ref: filepath.Join(confDir, "10-flannel.conf"), wantName: "flannel", wantConf: flannel},
		{name: "absolute path needs no API", getter: nil, namespace: "kube-system", ref: filepath.Join(confDir, "05-calico.conflist"), wantName: "calico", wantConf: calicoList},
		{name: "directory takes the alphabetically first config", getter: api, namespace: "kube-system", ref: confDir, wantName: "calico", wantConf: calicoList},
		{name: "directory skips braid's own configs", getter: api, namespace: "kube-system", ref: withBraid, wantName: "flannel", wantConf: flannel},
		{name: "directory with only braid", getter: api, namespace: "kube-system", ref: onlyBraid, wantCode: types.ErrTryAgainLater, wantMsg: []string{onlyBraid, "braid"}},
		{name: "missing absolute path", getter: api, namespace: "kube-system", ref: filepath.Join(confDir, "nope.conf"), wantCode: types.ErrTryAgainLater, wantMsg: []string{"nope.conf"}},
		{name: "directory without configs", getter: api, namespace: "kube-system", ref: emptyDir, wantCode: types.ErrTryAgainLater, wantMsg: []string{emptyDir}},
		{name: "file without name", getter: api, namespace: "kube-system", ref: filepath.Join(badDir, "20-unnamed.conflist"), wantCode: types.ErrInvalidNetworkConfig, wantMsg: []string{"20-unnamed.conflist"}},
		{name: "file with an empty name", getter: api, namespace: "kube-system", ref: filepath.Join(badDir, "21-empty-name.conf"), wantCode: types.ErrInvalidNetworkConfig, wantMsg: []string{"21-empty-name.conf"}},
		{name: "file whose name is a number", getter: api, namespace: "kube-system", ref: filepath.Join(badDir, "22-name-number.conf"), wantCode: types.ErrInvalidNetworkConfig, wantMsg: []string{"22-name-number.conf"}},
		{name: "directory whose first config has no name", getter: api, namespace: "kube-system", ref: badDir, wantCode: types.ErrInvalidNetworkConfig, wantMsg: []string{"20-unnamed.conflist"}},
		{name: "file that is not JSON", getter: api, namespace: "kube-system", ref: filepath.Join(confDir, "00-notes.txt"), wantCode: types.ErrInvalidNetworkConfig, wantMsg: []string{"00-notes.txt"}},
		{name: "NAD in namespace wins over the file", getter: api, namespace: "kube-system", ref: "flannel", wantName: "kube-system/flannel", wantConf: nadCluster, wantNAD: true},
		{name: "NAD missing falls back to file by name", getter: api, namespace: "kube-system", ref: "calico", wantName: "calico", wantConf: calicoList},
		{name: "NAD in another namespace is not used", getter: api, namespace: "braid", ref: "flannel", wantName: "flannel", wantConf: flannel},
		{name: "no API reads file by name", getter: nil, namespace: "kube-system", ref: "flannel", wantName: "flannel", wantConf: flannel},
		{name: "neither NAD nor file", getter: api, namespace: "kube-system", ref: "weave", wantCode: types.ErrTryAgainLater, wantMsg: []string{`"weave"`, "kube-system/weave", confDir}},
		{name: "API failure does not fall back to the file", getter: failing("etcdserver: request timed out"), namespace: "kube-system", ref: "calico", wantCode: types.ErrTryAgainLater, wantMsg: []string{"kube-system/calico", "request timed out"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &nad.Resolver{NADs: tt.getter, ConfDir: confDir}
			got, err := r.ClusterNetwork(context.Background(), tt.namespace, tt.ref)
			if tt.wantCode != 0 {
				if got != nil {
					t.Errorf("got network %+v with the error", got)
				}
				testutil.WantCNIError(t, err, tt.wantCode, tt.wantMsg...)
				return
			}
			if err != nil {
				t.Fatalf("ClusterNetwork: %v", err)
			}
			if got.Name != tt.wantName {
				t.Errorf("Name %q, want %q", got.Name, tt.wantName)
			}
			if g, w := testutil.Compact(t, got.Config), testutil.Compact(t, []byte(tt.wantConf)); g != w {
				t.Errorf("Config\n got %s\nwant %s", g, w)
			}
			if (got.NAD != nil) != tt.wantNAD {
				t.Errorf("NAD %v, want one: %v", got.NAD, tt.wantNAD)
			}
		})
	}
}

func TestInline(t *testing.T) {
	tests := []struct {
		name     string
		conf     string
		wantName string
		wantCode uint
	}{
		{name: "conf", conf: bridgeConf, wantName: "blue"},
		{name: "conflist", conf: tuningList, wantName: "green"},
		{name: "no name", conf: bridgeConfNoName, wantCode: types.ErrInvalidNetworkConfig},
		{name: "name is not a string", conf: `{"name":7,"type":"bridge"}`, wantCode: types.ErrInvalidNetworkConfig},
		{name: "invalid JSON", conf: `{"name":`, wantCode: types.ErrInvalidNetworkConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := nad.Inline([]byte(tt.conf))
			if tt.wantCode != 0 {
				testutil.WantCNIError(t, err, tt.wantCode, "inline delegate")
				return
			}
			if err != nil {
				t.Fatalf("Inline: %v", err)
			}
			if got.Name != tt.wantName {
				t.Errorf("Name %q, want %q", got.Name, tt.wantName)
			}
			if string(got.Config) != tt.conf {
				t.Errorf("Config %s, want the input unchanged", got.Config)
			}
			if got.NAD != nil {
				t.Errorf("NAD %v, want nil", got.NAD)
			}
		})
	}
}
