package netconf

import (
	"encoding/json"
	"errors"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
)

// multusThinConf is shaped like the 00-multus.conf that Multus's thin
// plugin installs, with every key braid reads set to a non-default value.
const multusThinConf = `{
  "cniVersion": "0.3.1",
  "name": "multus-cni-network",
  "type": "multus",
  "capabilities": {"portMappings": true, "bandwidth": true},
  "kubeconfig": "/etc/cni/net.d/multus.d/multus.kubeconfig",
  "confDir": "/host/etc/cni/multus/net.d",
  "cniDir": "/host/var/lib/cni/multus",
  "binDir": "/opt/cni/bin:/usr/libexec/cni",
  "clusterNetwork": "/host/etc/cni/net.d/10-calico.conflist",
  "defaultNetworks": ["kube-system/istio-cni", "sidecar-net"],
  "multusNamespace": "multus-system",
  "systemNamespaces": ["kube-system", "openshift-sdn"],
  "namespaceIsolation": true,
  "globalNamespaces": "default, shared-nets,",
  "readinessindicatorfile": "/host/run/calico/ready",
  "logFile": "/var/log/multus.log",
  "logLevel": "Verbose",
  "logToStderr": true,
  "runtimeConfig": {
    "portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]
  }
}`

func TestParseMultusThinConfig(t *testing.T) {
	got, err := Parse([]byte(multusThinConf))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := &NetConf{
		NetConf: types.NetConf{
			CNIVersion:   "0.3.1",
			Name:         "multus-cni-network",
			Type:         "multus",
			Capabilities: map[string]bool{"portMappings": true, "bandwidth": true},
		},
		Kubeconfig:             "/etc/cni/net.d/multus.d/multus.kubeconfig",
		ConfDir:                "/host/etc/cni/multus/net.d",
		CNIDir:                 "/host/var/lib/cni/multus",
		BinDir:                 "/opt/cni/bin:/usr/libexec/cni",
		ClusterNetwork:         "/host/etc/cni/net.d/10-calico.conflist",
		DefaultNetworks:        []string{"kube-system/istio-cni", "sidecar-net"},
		MultusNamespace:        "multus-system",
		SystemNamespaces:       []string{"kube-system", "openshift-sdn"},
		NamespaceIsolation:     true,
		GlobalNamespaces:       "default, shared-nets,",
		ReadinessIndicatorFile: "/host/run/calico/ready",
		LogFile:                "/var/log/multus.log",
		LogLevel:               "verbose",
		LogToStderr:            ptr(true),
		MaxNetworksPerPod:      DefaultMaxNetworksPerPod,
		RuntimeConfig: map[string]any{
			"portMappings": []any{map[string]any{
				"hostPort": float64(8080), "containerPort": float64(80), "protocol": "tcp",
			}},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Parse =\n%+v\nwant\n%+v", got, want)
	}
}

func TestParseLegacyDelegates(t *testing.T) {
	const flannel = `{"cniVersion":"0.3.1","name":"cbr0","plugins":[{"type":"flannel","delegate":{"isDefaultGateway":true}},{"type":"portmap","capabilities":{"portMappings":true}}]}`
	conf := `{"cniVersion":"0.3.1","name":"multus-cni-network","type":"multus",` +
		`"kubeconfig":"/etc/cni/net.d/multus.d/multus.kubeconfig","delegates":[` + flannel + `]}`
	got, err := Parse([]byte(conf))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if len(got.Delegates) != 1 || string(got.Delegates[0]) != flannel {
		t.Errorf("Delegates = %q, want [%s]", got.Delegates, flannel)
	}
	if got.ClusterNetwork != "" {
		t.Errorf("ClusterNetwork = %q, want empty", got.ClusterNetwork)
	}
}

func TestParseDefaults(t *testing.T) {
	// defaults is braid's config with every default filled in, changed by
	// change.
	defaults := func(change func(c *NetConf)) NetConf {
		c := NetConf{
			ConfDir:           DefaultConfDir,
			CNIDir:            DefaultCNIDir,
			BinDir:            DefaultBinDir,
			MultusNamespace:   DefaultMultusNamespace,
			SystemNamespaces:  []string{DefaultSystemNamespace},
			MaxNetworksPerPod: DefaultMaxNetworksPerPod,
		}
		if change != nil {
			change(&c)
		}
		return c
	}
	socketDir := func(c *NetConf) { c.DaemonSocketDir = "/run/braid" }
	tests := []struct {
		name string
		conf string
		want NetConf
	}{
		{
			name: "keys absent",
			conf: `{"cniVersion":"1.0.0","name":"braid","type":"braid","clusterNetwork":"calico"}`,
			want: defaults(nil),
		},
		{
			name: "null systemNamespaces gets the default",
			conf: `{"cniVersion":"1.0.0","clusterNetwork":"calico","systemNamespaces":null}`,
			want: defaults(nil),
		},
		{
			name: "daemonSocketDir kept as given",
			conf: `{"cniVersion":"1.0.0","clusterNetwork":"calico","daemonSocketDir":"/run/braid"}`,
			want: defaults(socketDir),
		},
		{
			// As multus-shim's: a config that forwards needs nothing else.
			name: "forwarding config needs no cluster network",
			conf: `{"cniVersion":"1.0.0","name":"braid-net","type":"braid-shim","daemonSocketDir":"/run/braid"}`,
			want: defaults(socketDir),
		},
		{
			name: "explicit empty systemNamespaces stays empty",
			conf: `{"cniVersion":"1.0.0","clusterNetwork":"calico","systemNamespaces":[]}`,
			want: defaults(func(c *NetConf) { c.SystemNamespaces = []string{} }),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.conf))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			// Compare braid's fields only; the CNI fields are covered above.
			got.NetConf, got.ClusterNetwork = types.NetConf{}, ""
			if !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("Parse =\n%#v\nwant\n%#v", *got, tt.want)
			}
		})
	}
}

func TestParseVersions(t *testing.T) {
	for _, v := range []string{"0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"} {
		t.Run(v, func(t *testing.T) {
			got, err := Parse(withKeys(t, map[string]any{"cniVersion": v}))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got.CNIVersion != v {
				t.Errorf("CNIVersion = %q, want %q", got.CNIVersion, v)
			}
		})
	}
}

func TestParseLogLevels(t *testing.T) {
	for _, level := range []string{"", "debug", "verbose", "info", "warn", "error", "panic", "DEBUG"} {
		t.Run(level, func(t *testing.T) {
			got, err := Parse(withKeys(t, map[string]any{"logLevel": level}))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if want := strings.ToLower(level); got.LogLevel != want {
				t.Errorf("LogLevel = %q, want %q", got.LogLevel, want)
			}
		})
	}
}

// absent removes a key from the base config in withKeys.
type absent struct{}

// withKeys returns a minimal valid config with keys set (or removed, for
// values of type absent).
func withKeys(t *testing.T, keys map[string]any) []byte {
	t.Helper()
	conf := map[string]any{
		"cniVersion":     "1.0.0",
		"name":           "braid",
		"type":           "braid",
		"clusterNetwork": "calico",
	}
	for k, v := range keys {
		if _, ok := v.(absent); ok {
			delete(conf, k)
			continue
		}
		conf[k] = v
	}
	data, err := json.Marshal(conf)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		data []byte
		// want are substrings of the error message after the common
		// "invalid braid config: " prefix; the first names the key.
		want []string
	}{
		{name: "cniVersion missing", data: withKeys(t, map[string]any{"cniVersion": absent{}}), want: []string{`key "cniVersion"`, "missing"}},
		{name: "cniVersion too old", data: withKeys(t, map[string]any{"cniVersion": "0.2.0"}), want: []string{`key "cniVersion"`, `"0.2.0"`, "1.1.0"}},
		{name: "cniVersion unknown", data: withKeys(t, map[string]any{"cniVersion": "2.0.0"}), want: []string{`key "cniVersion"`, `"2.0.0"`}},
		{name: "no cluster network", data: withKeys(t, map[string]any{"clusterNetwork": absent{}}), want: []string{`"clusterNetwork"`, `"delegates"`, "required"}},
		{name: "empty delegates and no cluster network", data: withKeys(t, map[string]any{"clusterNetwork": absent{}, "delegates": []any{}}), want: []string{`"clusterNetwork"`, `"delegates"`}},
		{name: "delegate not an object", data: withKeys(t, map[string]any{"clusterNetwork": absent{}, "delegates": []any{map[string]any{"type": "bridge"}, "flannel"}}), want: []string{`key "delegates"`, "entry 1"}},
		{name: "delegate null", data: withKeys(t, map[string]any{"clusterNetwork": absent{}, "delegates": []any{nil}}), want: []string{`key "delegates"`, "entry 0"}},
		{name: "logLevel unknown", data: withKeys(t, map[string]any{"logLevel": "loud"}), want: []string{`key "logLevel"`, `unknown level "loud"`, "debug, verbose"}},
		{name: "multusNamespace invalid", data: withKeys(t, map[string]any{"multusNamespace": "Kube_System"}), want: []string{`key "multusNamespace"`, `"Kube_System"`}},
		{name: "systemNamespaces entry invalid", data: withKeys(t, map[string]any{"systemNamespaces": []string{"kube-system", "a.b"}}), want: []string{`key "systemNamespaces"`, "entry 1", `"a.b"`}},
		{name: "systemNamespaces entry empty", data: withKeys(t, map[string]any{"systemNamespaces": []string{""}}), want: []string{`key "systemNamespaces"`, "entry 0"}},
		{name: "globalNamespaces entry invalid", data: withKeys(t, map[string]any{"globalNamespaces": "default, -bad"}), want: []string{`key "globalNamespaces"`, `"-bad"`}},
		{name: "defaultNetworks entry empty", data: withKeys(t, map[string]any{"defaultNetworks": []string{"istio-cni", " "}}), want: []string{`key "defaultNetworks"`, "entry 1"}},
		{name: "confDir relative", data: withKeys(t, map[string]any{"confDir": "etc/cni/multus"}), want: []string{`key "confDir"`, `"etc/cni/multus"`, "absolute"}},
		{name: "cniDir relative", data: withKeys(t, map[string]any{"cniDir": "./cni"}), want: []string{`key "cniDir"`, "absolute"}},
		{name: "binDir relative entry", data: withKeys(t, map[string]any{"binDir": "/opt/cni/bin:bin"}), want: []string{`key "binDir"`, `"bin"`}},
		{name: "binDir empty entry", data: withKeys(t, map[string]any{"binDir": "/opt/cni/bin:"}), want: []string{`key "binDir"`, `""`}},
		{name: "readinessindicatorfile relative", data: withKeys(t, map[string]any{"readinessindicatorfile": "ready"}), want: []string{`key "readinessindicatorfile"`, "absolute"}},
		{name: "daemonSocketDir relative", data: withKeys(t, map[string]any{"daemonSocketDir": "run/braid"}), want: []string{`key "daemonSocketDir"`, `"run/braid"`, "absolute"}},
		{name: "podResourcesSocket relative", data: withKeys(t, map[string]any{"podResourcesSocket": "kubelet.sock"}), want: []string{`key "podResourcesSocket"`, "absolute"}},
		{name: "deviceCheckpoint relative", data: withKeys(t, map[string]any{"deviceCheckpoint": "cp"}), want: []string{`key "deviceCheckpoint"`, "absolute"}},
		{name: "deviceInfoDir relative", data: withKeys(t, map[string]any{"deviceInfoDir": "devinfo"}), want: []string{`key "deviceInfoDir"`, "absolute"}},
		{name: "type error bool", data: withKeys(t, map[string]any{"namespaceIsolation": "yes"}), want: []string{`key "namespaceIsolation"`, "want bool, got string"}},
		{name: "type error list", data: withKeys(t, map[string]any{"systemNamespaces": "kube-system"}), want: []string{`key "systemNamespaces"`, "want array, got string"}},
		{name: "type error string", data: withKeys(t, map[string]any{"binDir": []string{"/opt/cni/bin"}}), want: []string{`key "binDir"`, "want string, got array"}},
		{name: "type error map", data: withKeys(t, map[string]any{"runtimeConfig": []any{}}), want: []string{`key "runtimeConfig"`, "want object, got array"}},
		{name: "type error embedded CNI key", data: withKeys(t, map[string]any{"cniVersion": 1}), want: []string{`key "cniVersion"`, "want string, got number"}},
		{name: "type error nested CNI key", data: withKeys(t, map[string]any{"ipam": map[string]any{"type": true}}), want: []string{`key "ipam.type"`, "want string, got bool"}},
		{name: "type error in map value", data: withKeys(t, map[string]any{"capabilities": map[string]any{"portMappings": "yes"}}), want: []string{`key "capabilities"`, "want bool, got string"}},
		{name: "not an object", data: []byte(`["braid"]`), want: []string{"want a JSON object, got array"}},
		{name: "malformed", data: []byte(`{"cniVersion": "1.0.0",`), want: []string{"malformed JSON"}},
		{name: "empty input", data: nil, want: []string{"malformed JSON"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.data)
			if err == nil {
				t.Fatalf("Parse succeeded with %+v, want error", got)
			}
			var cniErr *types.Error
			if !errors.As(err, &cniErr) {
				t.Fatalf("error %v (%T) is not a *types.Error", err, err)
			}
			if cniErr.Code != types.ErrInvalidNetworkConfig {
				t.Errorf("code = %d, want %d", cniErr.Code, types.ErrInvalidNetworkConfig)
			}
			const prefix = "invalid braid config: "
			if !strings.HasPrefix(cniErr.Msg, prefix) {
				t.Errorf("message %q does not start with %q", cniErr.Msg, prefix)
			}
			for _, w := range tt.want {
				if !strings.Contains(cniErr.Msg, w) {
					t.Errorf("message %q does not contain %q", cniErr.Msg, w)
				}
			}
		})
	}
}

func TestMarshalJSONKeepsEveryKey(t *testing.T) {
	c, err := Parse([]byte(multusThinConf))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	for name, v := range map[string]any{"pointer": c, "value": *c} {
		t.Run(name, func(t *testing.T) {
			data, err := json.Marshal(v)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			back, err := Parse(data)
			if err != nil {
				t.Fatalf("Parse of marshalled config: %v\n%s", err, data)
			}
			if !reflect.DeepEqual(back, c) {
				t.Errorf("round trip =\n%+v\nwant\n%+v", back, c)
			}
		})
	}
}

func TestMarshalJSONLeavesOutUnsetKeys(t *testing.T) {
	tests := []struct {
		name string
		conf NetConf
		want string
	}{
		{name: "zero", conf: NetConf{}, want: `{}`},
		{
			name: "no empty ipam or dns",
			conf: NetConf{NetConf: types.NetConf{Type: "braid"}, ClusterNetwork: "/etc/cni/net.d/10-flannel.conflist", BinDir: "/opt/cni/bin"},
			want: `{"type":"braid","clusterNetwork":"/etc/cni/net.d/10-flannel.conflist","binDir":"/opt/cni/bin"}`,
		},
		{
			name: "ipam and dns kept when set",
			conf: NetConf{NetConf: types.NetConf{Type: "braid", IPAM: types.IPAM{Type: "host-local"}, DNS: types.DNS{Nameservers: []string{"10.0.0.10"}}}},
			want: `{"type":"braid","ipam":{"type":"host-local"},"dns":{"nameservers":["10.0.0.10"]}}`,
		},
		{
			name: "false and zero left out",
			conf: NetConf{NamespaceIsolation: false, MaxNetworksPerPod: 0, LogToStderr: new(bool)},
			want: `{"logToStderr":false}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for name, v := range map[string]any{"pointer": &tt.conf, "value": tt.conf} {
				got, err := json.Marshal(v)
				if err != nil {
					t.Fatalf("%s: Marshal: %v", name, err)
				}
				if string(got) != tt.want {
					t.Errorf("%s: Marshal = %s, want %s", name, got, tt.want)
				}
			}
		})
	}
}

func TestGlobalNamespaceList(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{in: "", want: nil},
		{in: "default", want: []string{"default"}},
		{in: "default,shared", want: []string{"default", "shared"}},
		{in: " default , shared ,, ", want: []string{"default", "shared"}},
		{in: ",", want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			c := &NetConf{GlobalNamespaces: tt.in}
			if got := c.GlobalNamespaceList(); !slices.Equal(got, tt.want) {
				t.Errorf("GlobalNamespaceList() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestBinDirs(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{in: "", want: nil},
		{in: "/opt/cni/bin", want: []string{"/opt/cni/bin"}},
		{in: "/opt/cni/bin:/usr/libexec/cni", want: []string{"/opt/cni/bin", "/usr/libexec/cni"}},
		{in: "/opt/cni/bin::/usr/libexec/cni:", want: []string{"/opt/cni/bin", "/usr/libexec/cni"}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			c := &NetConf{BinDir: tt.in}
			if got := c.BinDirs(); !slices.Equal(got, tt.want) {
				t.Errorf("BinDirs() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestIsSystemNamespace(t *testing.T) {
	tests := []struct {
		name   string
		system []string
		ns     string
		want   bool
	}{
		{name: "listed", system: []string{"kube-system", "openshift-sdn"}, ns: "openshift-sdn", want: true},
		{name: "not listed", system: []string{"kube-system"}, ns: "default", want: false},
		{name: "empty list", system: []string{}, ns: "kube-system", want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &NetConf{SystemNamespaces: tt.system}
			if got := c.IsSystemNamespace(tt.ns); got != tt.want {
				t.Errorf("IsSystemNamespace(%q) = %v, want %v", tt.ns, got, tt.want)
			}
		})
	}
}

func TestNamespaceAllowed(t *testing.T) {
	tests := []struct {
		name      string
		isolation bool
		global    string
		podNS     string
		netNS     string
		want      bool
	}{
		{name: "no isolation, other namespace", podNS: "app", netNS: "other", want: true},
		{name: "isolation, same namespace", isolation: true, podNS: "app", netNS: "app", want: true},
		{name: "isolation, other namespace", isolation: true, podNS: "app", netNS: "other", want: false},
		{name: "isolation, global namespace", isolation: true, global: "default, shared", podNS: "app", netNS: "shared", want: true},
		{name: "isolation, default global while globalNamespaces unset", isolation: true, podNS: "app", netNS: "default", want: true},
		{name: "isolation, default not global once globalNamespaces is set", isolation: true, global: "shared", podNS: "app", netNS: "default", want: false},
		{name: "isolation, multus namespace not implicitly global", isolation: true, podNS: "app", netNS: "kube-system", want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &NetConf{
				NamespaceIsolation: tt.isolation,
				GlobalNamespaces:   tt.global,
				MultusNamespace:    DefaultMultusNamespace,
			}
			if got := c.NamespaceAllowed(tt.podNS, tt.netNS); got != tt.want {
				t.Errorf("NamespaceAllowed(%q, %q) = %v, want %v", tt.podNS, tt.netNS, got, tt.want)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestStderrLogging(t *testing.T) {
	tests := []struct {
		name string
		json string
		want bool
	}{
		{name: "absent defaults to true", json: `{}`, want: true},
		{name: "explicit true", json: `{"logToStderr": true}`, want: true},
		{name: "explicit false", json: `{"logToStderr": false}`, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c NetConf
			if err := json.Unmarshal([]byte(tt.json), &c); err != nil {
				t.Fatal(err)
			}
			if got := c.StderrLogging(); got != tt.want {
				t.Errorf("StderrLogging() = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestLevel: one reading of logLevel for the plugin and braidd; each
// names its own level for an unset one.
func TestLevel(t *testing.T) {
	for name, want := range map[string]slog.Level{
		"debug": slog.LevelDebug, "verbose": slog.LevelDebug, "info": slog.LevelInfo,
		"warn": slog.LevelWarn, "error": slog.LevelError, "panic": slog.LevelError,
	} {
		if got := (&NetConf{LogLevel: name}).Level(slog.LevelInfo); got != want {
			t.Errorf("Level(%q) = %v, want %v", name, got, want)
		}
	}
	for _, fallback := range []slog.Level{slog.LevelWarn, slog.LevelInfo} {
		if got := (&NetConf{}).Level(fallback); got != fallback {
			t.Errorf("unset level = %v, want the fallback %v", got, fallback)
		}
	}
}

func TestIsConfigFile(t *testing.T) {
	for name, want := range map[string]bool{
		"/etc/cni/net.d/10-flannel.conflist": true, "a.conf": true, "a.json": true,
		"a.yaml": false, "conflist": false, "/d/.00-braid.conflist.tmp123": false, ".a.conf": false,
	} {
		if got := IsConfigFile(name); got != want {
			t.Errorf("IsConfigFile(%q) = %v, want %v", name, got, want)
		}
	}
}
