package braidd

import (
	"errors"
	"strings"
	"testing"

	"k8s.io/client-go/rest"

	"github.com/braid-cni/braid/netconf"
)

// TestInClusterConfig: --api-server replaces only the address of the
// service account's config; the token and the CA stay.
func TestInClusterConfig(t *testing.T) {
	inCluster := func() (*rest.Config, error) {
		return &rest.Config{
			Host:            "https://10.96.0.1:443",
			BearerTokenFile: "/var/run/secrets/kubernetes.io/serviceaccount/token",
			TLSClientConfig: rest.TLSClientConfig{CAFile: "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"},
		}, nil
	}
	notInCluster := func() (*rest.Config, error) { return nil, rest.ErrNotInCluster }
	tests := []struct {
		name     string
		load     func() (*rest.Config, error)
		server   string
		wantHost string
		wantErr  string
	}{
		{name: "service address", load: inCluster, wantHost: "https://10.96.0.1:443"},
		{name: "API server flag", load: inCluster, server: "https://127.0.0.1:6443", wantHost: "https://127.0.0.1:6443"},
		{name: "no scheme", load: inCluster, server: "127.0.0.1:6443", wantErr: "want http(s)://host[:port]"},
		{name: "no host", load: inCluster, server: "https://", wantErr: "want http(s)://host[:port]"},
		{name: "not in a cluster", load: notInCluster, server: "https://127.0.0.1:6443", wantErr: "not in a cluster"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := inClusterConfig(tt.load, tt.server)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Host != tt.wantHost {
				t.Errorf("host = %q, want %q", cfg.Host, tt.wantHost)
			}
			if cfg.BearerTokenFile == "" || cfg.CAFile == "" {
				t.Errorf("token file %q and CA file %q: want the service account's kept", cfg.BearerTokenFile, cfg.CAFile)
			}
		})
	}
	if _, err := inClusterConfig(notInCluster, ""); !errors.Is(err, rest.ErrNotInCluster) {
		t.Errorf("err = %v, want it to wrap rest.ErrNotInCluster", err)
	}
}

// TestConnectAPIServerWithKubeconfig: the flag does not silently lose to a
// kubeconfig, which names its own server.
func TestConnectAPIServerWithKubeconfig(t *testing.T) {
	conf := &netconf.DaemonConf{NetConf: netconf.NetConf{Kubeconfig: "/etc/cni/net.d/braid.d/braid.kubeconfig"}}
	_, err := connect(conf, Options{APIServer: "https://127.0.0.1:6443"}, nil)
	if err == nil || !strings.Contains(err.Error(), "only for the in-cluster config") {
		t.Fatalf("err = %v, want the API server refused next to a kubeconfig", err)
	}
}
