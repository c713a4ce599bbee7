package e2e

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"

	"github.com/braid-cni/braid/e2e/framework"
	"github.com/braid-cni/braid/internal/testutil"
)

// TestFailuresLeaveNothing: every refused or failed ADD returns a clear CNI
// error and leaves no interface, no IP lease and no journal entry, the
// cluster network and the secondary networks attached before the failure
// included.
func TestFailuresLeaveNothing(t *testing.T) {
	inModes(t, func(t *testing.T, mode string) {
		tests := []struct {
			name     string
			networks func(n *node) string
			conf     map[string]any // extra braid config keys
			code     uint
			msg      []string
		}{
			{
				name:     "missing NAD",
				networks: func(n *node) string { return "blue, nosuch" },
				code:     types.ErrTryAgainLater,
				msg:      []string{"nosuch", "not found"},
			},
			{
				name:     "reserved interface name",
				networks: func(n *node) string { return `[{"name": "blue", "interface": "lo"}]` },
				code:     types.ErrInvalidNetworkConfig,
				msg:      []string{`"lo"`, "interface"},
			},
			{
				name:     "duplicate interface name",
				networks: func(n *node) string { return "blue@x1, blue@x1" },
				code:     types.ErrInvalidNetworkConfig,
				msg:      []string{"x1"},
			},
			{
				name: "two IPv4 default routes",
				networks: func(n *node) string {
					return `[{"name":"blue","default-route":["10.0.0.1"]},{"name":"blue","default-route":["10.0.1.1"]}]`
				},
				code: types.ErrInvalidNetworkConfig,
				msg:  []string{"default-route"},
			},
			{
				name:     "namespace isolation",
				networks: func(n *node) string { return "kube-system/blue" },
				conf:     map[string]any{"namespaceIsolation": true},
				code:     types.ErrInvalidNetworkConfig,
				msg:      []string{"isolation", "kube-system"},
			},
			{
				name:     "delegate fails after others were attached",
				networks: func(n *node) string { return "blue, broken" },
				code:     types.ErrInternal,
				msg:      []string{"/broken", "macvlan", "net2"},
			},
			{
				name:     "delegate error code kept",
				networks: func(n *node) string { return "blue, oldversion" },
				code:     types.ErrIncompatibleCNIVersion,
				msg:      []string{"/oldversion", "bridge", "net2"},
			},
			{
				name:     "plugin not installed",
				networks: func(n *node) string { return "blue, noplugin" },
				code:     types.ErrInvalidNetworkConfig,
				msg:      []string{"/noplugin", "nosuchplugin", "not found"},
			},
		}
		for _, v := range testutil.SpecVersions() {
			for _, tt := range tests {
				t.Run(v+"/"+tt.name, func(t *testing.T) {
					n := newNode(t, mode, v)
					n.createNAD(n.namespace, "blue", n.bridgeNet("blue", 1, false))
					n.createNAD(n.namespace, "broken", map[string]any{
						"cniVersion": v, "name": "broken", "type": "macvlan", "master": "nosuchlink0",
						"ipam": map[string]any{"type": "host-local", "dataDir": n.dataDir, "ranges": []any{[]any{map[string]any{"subnet": n.subnet(5)}}}},
					})
					old := n.bridgeNet("oldversion", 6, false)
					old["cniVersion"] = "0.9.0"
					n.createNAD(n.namespace, "oldversion", old)
					n.createNAD(n.namespace, "noplugin", map[string]any{"cniVersion": v, "name": "noplugin", "type": "nosuchplugin"})
					for k, val := range tt.conf {
						n.braidConf[k] = val
					}
					pod := n.createPod("bad", map[string]string{nadv1.NetworkAttachmentAnnot: tt.networks(n)})
					sb := n.sandbox(pod)
					_, err := sb.add()
					if err == nil {
						t.Fatal("ADD succeeded, want an error")
					}
					if got := cniCode(err); got != tt.code {
						t.Errorf("CNI code = %d, want %d (%v)", got, tt.code, err)
					}
					for _, m := range tt.msg {
						if !strings.Contains(err.Error(), m) {
							t.Errorf("error %q does not mention %q", err, m)
						}
					}
					if got := sb.links(); len(got) != 0 {
						t.Errorf("failed ADD left interfaces %v", keys(got))
					}
					for _, net := range []string{"cluster", "blue", "broken", "oldversion"} {
						if l := n.leases(net); len(l) != 0 {
							t.Errorf("failed ADD left leases %v on %s", l, net)
						}
					}
					if got := n.journal(); len(got) != 0 {
						t.Errorf("failed ADD left journal entries %v", got)
					}
					// The runtime calls DEL after a failed ADD; it must succeed.
					sb.mustDel()
				})
			}
		}
	})
}

// TestConfigErrors: a broken braid config is refused with code 7 naming the
// key. In thick mode braid's config is braidd's: braidd refuses to start
// with the bad key, and the shim's config, whose braid keys braidd ignores,
// cannot break (or steer) it.
func TestConfigErrors(t *testing.T) {
	t.Run(thin, func(t *testing.T) {
		n := newNode(t, thin, "1.0.0")
		n.braidConf["logLevel"] = "loud"
		sb := n.sandbox(n.createPod("p", nil))
		_, err := sb.add()
		if got := cniCode(err); got != types.ErrInvalidNetworkConfig {
			t.Fatalf("code = %d (%v), want 7", got, err)
		}
		if !strings.Contains(err.Error(), "logLevel") {
			t.Errorf("error %q does not name the key", err)
		}
		if l := n.leases("cluster"); len(l) != 0 {
			t.Errorf("refused ADD leased %v", l)
		}
	})
	t.Run(thick, func(t *testing.T) {
		n := newNode(t, thick, "1.0.0")
		d, err := framework.NewBraidd(shared.braiddBin, t.TempDir(), daemonConfig(n.daemonSettings(), map[string]any{"logLevel": "loud"}))
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Launch(t.Context()); err == nil {
			d.Stop()
			t.Fatal("braidd started with logLevel loud")
		}
		if log, _ := os.ReadFile(d.Log); !strings.Contains(string(log), `key "logLevel"`) {
			t.Errorf("braidd's log %q does not name the key", log)
		}

		// What the shim's config says of braid's settings is not braid's.
		evil := t.TempDir()
		for k, v := range map[string]any{"logLevel": "loud", "binDir": evil, "cniDir": evil, "confDir": evil,
			"clusterNetwork": filepath.Join(evil, "none.conflist"), "logFile": filepath.Join(evil, "log")} {
			n.braidConf[k] = v
		}
		n.daemon.settings = n.daemonSettings() // braidd keeps its own config
		sb := n.sandbox(n.createPod("p", nil))
		if _, err := sb.add(); err != nil {
			t.Fatalf("ADD with braid keys in the shim's config: %v", err)
		}
		if got := keys(sb.links()); !slices.Equal(got, []string{"eth0"}) {
			t.Errorf("pod interfaces = %v, want eth0 from braidd's cluster network", got)
		}
		sb.mustDel()
		if entries, _ := os.ReadDir(evil); len(entries) != 0 {
			t.Errorf("%s holds %v, want nothing written there", evil, entries)
		}
	})
}
