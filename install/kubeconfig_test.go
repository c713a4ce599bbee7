package install

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
)

func TestKubeconfig(t *testing.T) {
	tests := []struct {
		name, server, token string
		ca                  []byte
	}{
		{name: "ipv4", server: "https://10.96.0.1:443", token: "tok-1", ca: []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")},
		{name: "ipv6", server: "https://[fd00::1]:443", token: "tok-2", ca: []byte("ca")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := Kubeconfig(tt.server, tt.ca, tt.token)
			if err != nil {
				t.Fatalf("Kubeconfig: %v", err)
			}
			cfg, err := clientcmd.Load(data)
			if err != nil {
				t.Fatalf("clientcmd.Load: %v", err)
			}
			kctx, ok := cfg.Contexts[cfg.CurrentContext]
			if !ok {
				t.Fatalf("current context %q missing", cfg.CurrentContext)
			}
			cluster, user := cfg.Clusters[kctx.Cluster], cfg.AuthInfos[kctx.AuthInfo]
			if cluster == nil || user == nil {
				t.Fatalf("context %+v names a missing cluster or user", kctx)
			}
			if cluster.Server != tt.server || !bytes.Equal(cluster.CertificateAuthorityData, tt.ca) || user.Token != tt.token {
				t.Errorf("server, CA, token = %q, %q, %q; want %q, %q, %q", cluster.Server, cluster.CertificateAuthorityData, user.Token, tt.server, tt.ca, tt.token)
			}
			// What braid's kube package does with the file.
			rest, err := clientcmd.NewDefaultClientConfig(*cfg, nil).ClientConfig()
			if err != nil {
				t.Fatalf("client config: %v", err)
			}
			if rest.Host != tt.server || rest.BearerToken != tt.token || !bytes.Equal(rest.CAData, tt.ca) {
				t.Errorf("rest config host, token, CA = %q, %q, %q", rest.Host, rest.BearerToken, rest.CAData)
			}
		})
	}
}

func TestKubeconfigErrors(t *testing.T) {
	tests := []struct{ name, server, token string }{
		{name: "no server", token: "t"},
		{name: "no token", server: "https://10.96.0.1:443"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Kubeconfig(tt.server, []byte("ca"), tt.token); err == nil {
				t.Fatal("Kubeconfig succeeded, want an error")
			}
		})
	}
}

func TestServiceAccount(t *testing.T) {
	tests := []struct {
		name      string
		files     map[string]string
		wantToken string
		wantErr   bool
	}{
		{name: "token and CA", files: map[string]string{"token": "abc.def", "ca.crt": "CA"}, wantToken: "abc.def"},
		{name: "trailing newline trimmed", files: map[string]string{"token": "abc\n", "ca.crt": "CA"}, wantToken: "abc"},
		{name: "no token", files: map[string]string{"ca.crt": "CA"}, wantErr: true},
		{name: "empty token", files: map[string]string{"token": " \n", "ca.crt": "CA"}, wantErr: true},
		{name: "no CA", files: map[string]string{"token": "abc"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeFiles(t, tt.files)
			token, ca, err := ServiceAccount(dir)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ServiceAccount = %q, want an error", token)
				}
				return
			}
			if err != nil {
				t.Fatalf("ServiceAccount: %v", err)
			}
			if token != tt.wantToken || string(ca) != tt.files["ca.crt"] {
				t.Errorf("token, CA = %q, %q; want %q, %q", token, ca, tt.wantToken, tt.files["ca.crt"])
			}
		})
	}
}

func TestServiceAccountDefaultDir(t *testing.T) {
	if _, err := os.Stat(filepath.Join(DefaultServiceAccountDir, "token")); err == nil {
		t.Skip("running in a pod: the default service account directory exists")
	}
	_, _, err := ServiceAccount("")
	if err == nil || !strings.Contains(err.Error(), DefaultServiceAccountDir) {
		t.Fatalf("ServiceAccount(\"\") = %v, want an error naming %s", err, DefaultServiceAccountDir)
	}
}
