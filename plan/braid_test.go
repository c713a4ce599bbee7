package plan_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/braid-cni/braid/annotations"
	"github.com/braid-cni/braid/internal/testutil"
	"github.com/braid-cni/braid/nad"
	"github.com/braid-cni/braid/netconf"
	"github.com/braid-cni/braid/plan"
)

// TestBuildRefusesBraid: braid never runs itself as a delegate. Whatever
// source a config comes from, a chain with a plugin (or an IPAM plugin)
// of braid's own type is refused with code 7 naming the network and the
// field, before anything could run.
func TestBuildRefusesBraid(t *testing.T) {
	const (
		braidConf  = `{"cniVersion":"1.0.0","name":"evil","type":"braid","binDir":"/tmp/attacker","logFile":"/etc/evil","clusterNetwork":"/etc/shadow"}`
		shimList   = `{"cniVersion":"1.0.0","name":"evil","plugins":[{"type":"bridge"},{"type":"braid-shim","daemonSocketDir":"/tmp/x"}]}`
		ipamBraid  = `{"cniVersion":"1.0.0","name":"evil","type":"bridge","ipam":{"type":"braid","binDir":"/tmp/attacker"}}`
		renamed    = `{"cniVersion":"1.0.0","name":"evil","type":"multus"}`
		bridgeConf = `{"cniVersion":"1.0.0","name":"fine","type":"bridge"}`
	)
	tests := []struct {
		name     string
		nads     map[string]string // "ns/name" -> spec.config
		files    map[string]string // confDir files
		conf     map[string]string // extra braid config keys, raw JSON values
		annots   map[string]string
		network  string // named in the error
		field    string
		pluginTy string
	}{
		{name: "NAD single config", nads: map[string]string{"ns/evil": braidConf},
			annots: map[string]string{annotations.NetworksKey: "evil"}, network: "ns/evil", field: "type", pluginTy: "braid"},
		{name: "NAD conflist second plugin", nads: map[string]string{"ns/evil": shimList},
			annots: map[string]string{annotations.NetworksKey: "evil"}, network: "ns/evil", field: "plugins[1].type", pluginTy: "braid-shim"},
		{name: "NAD IPAM plugin", nads: map[string]string{"ns/evil": ipamBraid},
			annots: map[string]string{annotations.NetworksKey: "evil"}, network: "ns/evil", field: "ipam.type", pluginTy: "braid"},
		{name: "NAD under the type braid was installed as", nads: map[string]string{"ns/evil": renamed},
			conf:   map[string]string{"type": `"multus"`},
			annots: map[string]string{annotations.NetworksKey: "evil"}, network: "ns/evil", field: "type", pluginTy: "multus"},
		{name: "NAD without spec.config, from a confDir file", nads: map[string]string{"ns/evil": ""}, files: map[string]string{"evil.conf": braidConf},
			annots: map[string]string{annotations.NetworksKey: "evil"}, network: "ns/evil", field: "type", pluginTy: "braid"},
		{name: "clusterNetwork path", files: map[string]string{"cluster.conf": braidConf},
			conf: map[string]string{"clusterNetwork": "CONFDIR/cluster.conf"}, network: "evil", field: "type", pluginTy: "braid"},
		{name: "clusterNetwork NAD", nads: map[string]string{"kube-system/cluster": shimList},
			conf: map[string]string{"clusterNetwork": `"cluster"`}, network: "kube-system/cluster", field: "plugins[1].type", pluginTy: "braid-shim"},
		{name: "default-network annotation", nads: map[string]string{"kube-system/evil": braidConf},
			annots: map[string]string{annotations.DefaultNetworkKey: "evil"}, network: "kube-system/evil", field: "type", pluginTy: "braid"},
		{name: "defaultNetworks", nads: map[string]string{"kube-system/evil": ipamBraid},
			conf: map[string]string{"defaultNetworks": `["evil"]`}, network: "kube-system/evil", field: "ipam.type", pluginTy: "braid"},
		{name: "inline delegates", conf: map[string]string{"clusterNetwork": `""`, "delegates": "[" + bridgeConf + "," + braidConf + "]"},
			network: "evil", field: "type", pluginTy: "braid"},
		{name: "inline cluster delegate", conf: map[string]string{"clusterNetwork": `""`, "delegates": "[" + shimList + "]"},
			network: "evil", field: "plugins[1].type", pluginTy: "braid-shim"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			confDir := t.TempDir()
			cluster := filepath.Join(confDir, "00-cluster.conflist")
			writeFile(t, cluster, clusterList)
			for name, content := range tt.files {
				writeFile(t, filepath.Join(confDir, name), content)
			}
			keys := map[string]string{"cniVersion": `"1.0.0"`, "name": `"braid"`, "type": `"braid"`,
				"confDir": fmt.Sprintf("%q", confDir), "clusterNetwork": fmt.Sprintf("%q", cluster)}
			for k, v := range tt.conf {
				if file, ok := strings.CutPrefix(v, "CONFDIR/"); ok {
					v = fmt.Sprintf("%q", filepath.Join(confDir, file))
				}
				keys[k] = v
			}
			var parts []string
			for k, v := range keys {
				if v != `""` {
					parts = append(parts, fmt.Sprintf("%q:%s", k, v))
				}
			}
			nc, err := netconf.Parse([]byte("{" + strings.Join(parts, ",") + "}"))
			if err != nil {
				t.Fatal(err)
			}
			nads := mapNADs{}
			for id, config := range tt.nads {
				ns, name, _ := strings.Cut(id, "/")
				nads[id] = newNAD(ns, name, config)
			}
			pods := &mapPods{pods: map[string]*corev1.Pod{"ns/p": newPod("ns", "p", "uid-1", tt.annots)}}
			b := &plan.Builder{Conf: nc, Pods: pods, Resolver: &nad.Resolver{NADs: nads, ConfDir: confDir}, Log: slog.New(slog.DiscardHandler)}
			p, err := b.Build(context.Background(), plan.Request{ContainerID: "c1", IfName: "eth0", Pod: plan.PodRef{Namespace: "ns", Name: "p", UID: "uid-1"}})
			if err == nil {
				t.Fatalf("Build = %d attachments, want a refusal", len(p.Attachments))
			}
			testutil.WantCNIError(t, err, types.ErrInvalidNetworkConfig, "network "+tt.network+" ", tt.field+` is "`+tt.pluginTy+`"`, "braid never runs itself as a delegate")
		})
	}
}

// TestBuildNetworkLimit: more secondary networks than maxNetworksPerPod
// (defaultNetworks and the annotation together) is code 7 naming the count
// and the limit, before any NAD is read.
func TestBuildNetworkLimit(t *testing.T) {
	nc := clusterFileConf(t)
	nc.MaxNetworksPerPod = 3
	nc.DefaultNetworks = []string{"dflt"}
	reads := &countingNADs{mapNADs: fixtureNADs()}
	build := func(networks string) error {
		pods := &mapPods{pods: map[string]*corev1.Pod{"ns/p": newPod("ns", "p", "uid-1", map[string]string{annotations.NetworksKey: networks})}}
		b := &plan.Builder{Conf: nc, Pods: pods, Resolver: &nad.Resolver{NADs: reads, ConfDir: nc.ConfDir}, Log: slog.New(slog.DiscardHandler)}
		_, err := b.Build(context.Background(), plan.Request{ContainerID: "c1", IfName: "eth0", Pod: plan.PodRef{Namespace: "ns", Name: "p", UID: "uid-1"}})
		return err
	}
	if err := build("a, b"); err != nil {
		t.Fatalf("3 networks with a limit of 3: %v", err)
	}
	reads.n = 0
	huge := strings.TrimSuffix(strings.Repeat("a,", 100000), ",")
	testutil.WantCNIError(t, build(huge), types.ErrInvalidNetworkConfig, "100001 networks requested", "3 a pod may have", "maxNetworksPerPod")
	testutil.WantCNIError(t, build("a, b, c"), types.ErrInvalidNetworkConfig, "4 networks requested")
	if reads.n != 0 {
		t.Errorf("%d NAD reads for refused pods, want none", reads.n)
	}
}

type countingNADs struct {
	mapNADs
	n int
}

func (c *countingNADs) GetNAD(ctx context.Context, namespace, name string) (*nadv1.NetworkAttachmentDefinition, error) {
	c.n++
	return c.mapNADs.GetNAD(ctx, namespace, name)
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
