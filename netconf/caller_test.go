package netconf

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
)

// TestForCaller: in braidd the caller's config gives only its runtime keys;
// braid's settings stay the daemon's, whatever the caller says.
func TestForCaller(t *testing.T) {
	daemon, err := ParseDaemon([]byte(`{"clusterNetwork":"/etc/cni/net.d/10-cluster.conflist","cniDir":"/var/lib/cni/braid",
		"binDir":"/opt/cni/bin","confDir":"/etc/cni/multus/net.d","kubeconfig":"/etc/braid/kubeconfig","namespaceIsolation":true,
		"maxNetworksPerPod":4,"logLevel":"info"}`), func(string) string { return "" }, func() (string, error) { return "n1", nil })
	if err != nil {
		t.Fatal(err)
	}
	// What an attacker-controlled or merely careless shim config could say.
	stdin := `{"cniVersion":"1.1.0","name":"braid-net","type":"braid-shim","daemonSocketDir":"/run/braid",
		"capabilities":{"portMappings":true},"runtimeConfig":{"portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"tcp"}]},
		"cni.dev/valid-attachments":[{"containerID":"c1","ifname":"eth0"}],
		"clusterNetwork":"/etc/shadow","binDir":"/tmp/evil","cniDir":"/tmp/x","confDir":"/tmp/y","kubeconfig":"/tmp/k",
		"logFile":"/etc/passwd","namespaceIsolation":false,"maxNetworksPerPod":100000,"delegates":[{"type":"evil"}],
		"defaultNetworks":["evil"],"multusNamespace":"attacker","readinessindicatorfile":"/nonexistent"}`
	got, err := daemon.NetConf.ForCaller([]byte(stdin))
	if err != nil {
		t.Fatal(err)
	}
	want := daemon.NetConf
	want.NetConf = types.NetConf{
		CNIVersion:       "1.1.0",
		Name:             "braid-net",
		Type:             "braid-shim",
		Capabilities:     map[string]bool{"portMappings": true},
		ValidAttachments: []types.GCAttachment{{ContainerID: "c1", IfName: "eth0"}},
	}
	want.RuntimeConfig = map[string]any{"portMappings": []any{map[string]any{"hostPort": float64(8080), "containerPort": float64(80), "protocol": "tcp"}}}
	if !reflect.DeepEqual(*got, want) {
		t.Errorf("ForCaller =\n%+v\nwant\n%+v", *got, want)
	}
	if daemon.NetConf.CNIVersion != "" || daemon.NetConf.RuntimeConfig != nil {
		t.Errorf("ForCaller changed the daemon's config: %+v", daemon.NetConf)
	}

	for name, bad := range map[string]string{
		"cniVersion": `{"cniVersion":"9.9.9","name":"n"}`,
		"name":       `{"cniVersion":"1.0.0","name":7}`,
	} {
		_, err := daemon.NetConf.ForCaller([]byte(bad))
		var te *types.Error
		if !errors.As(err, &te) || te.Code != types.ErrInvalidNetworkConfig || !strings.Contains(te.Msg, `"`+name+`"`) {
			t.Errorf("ForCaller(%s) = %v, want code 7 naming %q", bad, err, name)
		}
	}
}

func TestIsOwnType(t *testing.T) {
	c := &NetConf{NetConf: types.NetConf{Type: "multus"}}
	for typ, want := range map[string]bool{"braid": true, "braid-shim": true, "multus": true, "bridge": false, "": false, "Braid": false} {
		if got := c.IsOwnType(typ); got != want {
			t.Errorf("IsOwnType(%q) = %v, want %v", typ, got, want)
		}
	}
}
