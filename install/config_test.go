package install

import (
	"encoding/json"
	"maps"
	"testing"

	"github.com/braid-cni/braid/netconf"
)

// pluginEntry returns plugins[0] of a conflist with the name and
// cniVersion the runtime injects, parsed by netconf.Parse, and the list.
func pluginEntry(t *testing.T, data []byte) (*netconf.NetConf, map[string]any) {
	t.Helper()
	var list struct {
		CNIVersion string           `json:"cniVersion"`
		Name       string           `json:"name"`
		Plugins    []map[string]any `json:"plugins"`
	}
	if err := json.Unmarshal(data, &list); err != nil {
		t.Fatalf("decode %s: %v", data, err)
	}
	if len(list.Plugins) != 1 {
		t.Fatalf("plugins = %d, want 1", len(list.Plugins))
	}
	entry := list.Plugins[0]
	entry["name"], entry["cniVersion"] = list.Name, list.CNIVersion
	raw, err := json.Marshal(entry)
	if err != nil {
		t.Fatal(err)
	}
	conf, err := netconf.Parse(raw)
	if err != nil {
		t.Fatalf("netconf.Parse(%s): %v", raw, err)
	}
	return conf, entry
}

// readBack returns the Options that c carries (HostConfDir is folded into
// ClusterNetwork and left empty).
func readBack(c *netconf.NetConf) Options {
	return Options{
		Name: c.Name, Kubeconfig: c.Kubeconfig, CNIDir: c.CNIDir, BinDir: c.BinDir, ConfDir: c.ConfDir,
		LogFile: c.LogFile, LogLevel: c.LogLevel, NamespaceIsolation: c.NamespaceIsolation,
		GlobalNamespaces: c.GlobalNamespaces, ReadinessIndicatorFile: c.ReadinessIndicatorFile,
		DaemonSocketDir: c.DaemonSocketDir,
	}
}

type configCase struct {
	name        string
	file        string
	primary     string
	opts        Options
	wantOpts    Options
	wantVer     string
	wantCaps    map[string]bool
	wantCluster string
	wantType    string // "" means braid
}

func configCases() []configCase {
	defaults := Options{Name: DefaultName, CNIDir: netconf.DefaultCNIDir, BinDir: netconf.DefaultBinDir, ConfDir: netconf.DefaultConfDir}
	every := Options{
		Name: "multi", Kubeconfig: "/etc/cni/net.d/braid.d/braid.kubeconfig",
		CNIDir: "/var/lib/b", BinDir: "/opt/cni/bin:/usr/libexec/cni", ConfDir: "/etc/b",
		LogFile: "/var/log/braid.log", LogLevel: "debug", NamespaceIsolation: true,
		GlobalNamespaces: "default,shared", ReadinessIndicatorFile: "/run/flannel/subnet.env",
	}
	thick := defaults
	thick.DaemonSocketDir = "/run/braid"
	withHost := every
	withHost.HostConfDir = "/host-view/net.d"
	return []configCase{
		{
			name: "conflist with defaults", file: "/host/etc/cni/net.d/10-flannel.conflist", primary: flannelList,
			wantOpts: defaults, wantVer: "1.0.0", wantCaps: map[string]bool{"portMappings": true},
			wantCluster: "/etc/cni/net.d/10-flannel.conflist",
		},
		{
			name: "union of capabilities", file: "/x/10-calico.conflist",
			primary: `{"cniVersion":"0.3.1","name":"k8s-pod-network","plugins":[
				{"type":"calico","capabilities":{"ips":true,"bandwidth":false}},
				{"type":"bandwidth","capabilities":{"bandwidth":true}},
				{"type":"portmap","capabilities":{"portMappings":true,"ips":true}}]}`,
			wantOpts: defaults, wantVer: "0.3.1", wantCaps: map[string]bool{"ips": true, "bandwidth": true, "portMappings": true},
			wantCluster: "/etc/cni/net.d/10-calico.conflist",
		},
		{
			name: "single conf, every option", file: "/x/10-bridge.conf", primary: bridgeConf, opts: withHost,
			wantOpts: every, wantVer: "0.3.1", wantCluster: "/host-view/net.d/10-bridge.conf",
		},
		{
			name: "cniVersions list picks the highest", file: "/x/10-x.conflist",
			primary:  `{"cniVersions":["0.4.0","1.1.0"],"name":"x","plugins":[{"type":"ptp"}]}`,
			wantOpts: defaults, wantVer: "1.1.0", wantCluster: "/etc/cni/net.d/10-x.conflist",
		},
		{
			name: "thick mode gets the shim", file: "/x/10-bridge.conf", primary: bridgeConf, opts: thick,
			wantOpts: thick, wantVer: "0.3.1", wantCluster: "/etc/cni/net.d/10-bridge.conf", wantType: "braid-shim",
		},
	}
}

func TestConfig(t *testing.T) {
	for _, tt := range configCases() {
		t.Run(tt.name, func(t *testing.T) {
			data, err := Config(tt.file, []byte(tt.primary), tt.opts)
			if err != nil {
				t.Fatalf("Config: %v", err)
			}
			conf, entry := pluginEntry(t, data)
			wantType := tt.wantType
			if wantType == "" {
				wantType = "braid"
			}
			if conf.Type != wantType || conf.CNIVersion != tt.wantVer {
				t.Errorf("type, cniVersion = %q, %q; want %s, %q", conf.Type, conf.CNIVersion, wantType, tt.wantVer)
			}
			if !maps.Equal(conf.Capabilities, tt.wantCaps) {
				t.Errorf("capabilities = %v, want %v", conf.Capabilities, tt.wantCaps)
			}
			if got := readBack(conf); got != tt.wantOpts {
				t.Errorf("options read back = %+v, want %+v", got, tt.wantOpts)
			}
			if conf.ClusterNetwork != tt.wantCluster {
				t.Errorf("clusterNetwork = %q, want %q", conf.ClusterNetwork, tt.wantCluster)
			}
			if _, ok := entry["ipam"]; ok {
				t.Errorf("entry has an ipam key: %v", entry)
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name, file, primary string
		opts                Options
	}{
		{name: "unparsable primary", file: "/x/10-a.conflist", primary: "{"},
		{name: "version braid does not support", file: "/x/10-a.conf", primary: `{"cniVersion":"0.2.0","name":"a","type":"bridge"}`},
		{name: "no cniVersion", file: "/x/10-a.conf", primary: `{"name":"a","type":"bridge"}`},
		{name: "relative binDir", file: "/x/10-a.conf", primary: bridgeConf, opts: Options{BinDir: "bin"}},
		{name: "bad log level", file: "/x/10-a.conf", primary: bridgeConf, opts: Options{LogLevel: "loud"}},
		{name: "bad global namespace", file: "/x/10-a.conf", primary: bridgeConf, opts: Options{GlobalNamespaces: "Not_A_Namespace"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if data, err := Config(tt.file, []byte(tt.primary), tt.opts); err == nil {
				t.Fatalf("Config succeeded: %s", data)
			}
		})
	}
}

// TestConfigBytes pins the bytes Config writes, key order and indentation
// included: autoconf and install compare them with the file on disk and
// rewrite it on any difference, so an upgrade that only reorders keys would
// make every node's runtime reload braid's config.
func TestConfigBytes(t *testing.T) {
	tests := []struct {
		name, file, primary string
		opts                Options
		want                string
	}{
		{
			name: "defaults", file: "/x/10-bridge.conf", primary: bridgeConf,
			want: `{
  "cniVersion": "0.3.1",
  "name": "braid-net",
  "plugins": [
    {
      "type": "braid",
      "clusterNetwork": "/etc/cni/net.d/10-bridge.conf",
      "confDir": "/etc/cni/multus/net.d",
      "cniDir": "/var/lib/cni/braid",
      "binDir": "/opt/cni/bin"
    }
  ]
}
`,
		},
		{
			name: "every option", file: "/x/10-flannel.conflist", primary: flannelList,
			opts: Options{
				Name: "multi", Kubeconfig: "/etc/cni/net.d/braid.d/braid.kubeconfig", HostConfDir: "/host-view/net.d",
				CNIDir: "/var/lib/b", BinDir: "/opt/cni/bin:/usr/libexec/cni", ConfDir: "/etc/b",
				LogFile: "/var/log/braid.log", LogLevel: "debug", NamespaceIsolation: true,
				GlobalNamespaces: "default,shared", ReadinessIndicatorFile: "/run/flannel/subnet.env",
				DaemonSocketDir: "/run/braid",
			},
			want: `{
  "cniVersion": "1.0.0",
  "name": "multi",
  "plugins": [
    {
      "type": "braid-shim",
      "capabilities": {
        "portMappings": true
      },
      "kubeconfig": "/etc/cni/net.d/braid.d/braid.kubeconfig",
      "clusterNetwork": "/host-view/net.d/10-flannel.conflist",
      "confDir": "/etc/b",
      "cniDir": "/var/lib/b",
      "binDir": "/opt/cni/bin:/usr/libexec/cni",
      "logFile": "/var/log/braid.log",
      "logLevel": "debug",
      "namespaceIsolation": true,
      "globalNamespaces": "default,shared",
      "readinessindicatorfile": "/run/flannel/subnet.env",
      "daemonSocketDir": "/run/braid"
    }
  ]
}
`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Config(tt.file, []byte(tt.primary), tt.opts)
			if err != nil {
				t.Fatalf("Config: %v", err)
			}
			if string(got) != tt.want {
				t.Errorf("Config wrote\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}
