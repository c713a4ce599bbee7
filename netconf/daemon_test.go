package netconf

import (
	"errors"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
)

func TestParseDaemon(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	host := func() (string, error) { return "host-a", nil }
	noHost := func() (string, error) { return "", errors.New("no uts") }
	tests := []struct {
		name     string
		json     string
		env      map[string]string
		hostname func() (string, error)
		check    func(t *testing.T, c *DaemonConf)
		wantKey  string // error naming this key
	}{
		{name: "defaults", json: `{"clusterNetwork":"cluster"}`, hostname: host, check: func(t *testing.T, c *DaemonConf) {
			if c.SocketDir != DefaultSocketDir || c.CNIConfigDir != DefaultCNIConfigDir || c.ConfigName != DefaultConfigName ||
				c.NodeName != "host-a" || c.MaxConcurrent < 4 || c.CNIDir != DefaultCNIDir || c.MetricsAddr != "" {
				t.Errorf("defaults = %+v", c)
			}
		}},
		{name: "NODE_NAME wins over the hostname", json: `{"clusterNetwork":"cluster"}`, env: map[string]string{"NODE_NAME": "node-7"}, hostname: host, check: func(t *testing.T, c *DaemonConf) {
			if c.NodeName != "node-7" {
				t.Errorf("nodeName = %q", c.NodeName)
			}
		}},
		{name: "every key", json: `{"kubeconfig":"/etc/k","socketDir":"/var/run/b","nodeName":"n1","metricsAddr":"127.0.0.1:9091",
			"maxConcurrent":7,"parallelAttach":true,"autoconfig":true,"cniConfigDir":"/etc/cni/x","configName":"01-b.conflist",
			"removeConfigOnExit":true,"enablePprof":true,"logLevel":"debug"}`, hostname: noHost, check: func(t *testing.T, c *DaemonConf) {
			if c.Kubeconfig != "/etc/k" || c.SocketDir != "/var/run/b" || c.NodeName != "n1" || c.MetricsAddr != "127.0.0.1:9091" ||
				c.MaxConcurrent != 7 || !c.ParallelAttach || !c.Autoconfig || c.CNIConfigDir != "/etc/cni/x" ||
				c.ConfigName != "01-b.conflist" || !c.RemoveConfigOnExit || !c.EnablePprof || c.LogLevel != "debug" {
				t.Errorf("parsed = %+v", c)
			}
		}},
		{name: "no node name anywhere", json: `{"clusterNetwork":"cluster"}`, hostname: noHost, wantKey: "nodeName"},
		{name: "relative socket dir", json: `{"clusterNetwork":"cluster","socketDir":"run/braid"}`, hostname: host, wantKey: "socketDir"},
		{name: "relative cni config dir", json: `{"clusterNetwork":"cluster","cniConfigDir":"net.d"}`, hostname: host, wantKey: "cniConfigDir"},
		{name: "config name with a directory", json: `{"clusterNetwork":"cluster","configName":"../00-braid.conflist"}`, hostname: host, wantKey: "configName"},
		{name: "config name not a conflist", json: `{"clusterNetwork":"cluster","configName":"00-braid.conf"}`, hostname: host, wantKey: "configName"},
		{name: "negative concurrency", json: `{"clusterNetwork":"cluster","maxConcurrent":-1}`, hostname: host, wantKey: "maxConcurrent"},
		{name: "bad log level", json: `{"clusterNetwork":"cluster","logLevel":"loud"}`, hostname: host, wantKey: "logLevel"},
		{name: "autoconfig needs no cluster network", json: `{"autoconfig":true,"cniConfigDir":"/etc/cni/x"}`, hostname: host, check: func(t *testing.T, c *DaemonConf) {
			if c.ClusterNetwork != "" {
				t.Errorf("clusterNetwork = %q, want none: autoconfig's primary", c.ClusterNetwork)
			}
		}},
		{name: "explicit cluster network kept with autoconfig", json: `{"autoconfig":true,"clusterNetwork":"/etc/cni/net.d/10-a.conflist"}`, hostname: host, check: func(t *testing.T, c *DaemonConf) {
			if c.ClusterNetwork != "/etc/cni/net.d/10-a.conflist" {
				t.Errorf("clusterNetwork = %q", c.ClusterNetwork)
			}
		}},
		{name: "no cluster network and no autoconfig", json: `{}`, hostname: host, wantKey: "clusterNetwork"},
		{name: "daemonSocketDir is not a daemon key", json: `{"clusterNetwork":"cluster","daemonSocketDir":"/run/x"}`, hostname: host, wantKey: "daemonSocketDir"},
		{name: "maxNetworksPerPod below 1", json: `{"clusterNetwork":"cluster","maxNetworksPerPod":-3}`, hostname: host, wantKey: "maxNetworksPerPod"},
		{name: "wrong type", json: `{"clusterNetwork":"cluster","autoconfig":"yes"}`, hostname: host, wantKey: "autoconfig"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseDaemon([]byte(tt.json), env(tt.env), tt.hostname)
			if tt.wantKey != "" {
				var te *types.Error
				if !errors.As(err, &te) || te.Code != types.ErrInvalidNetworkConfig || !strings.Contains(te.Msg, `"`+tt.wantKey+`"`) {
					t.Fatalf("error = %v, want code 7 naming %q", err, tt.wantKey)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}
