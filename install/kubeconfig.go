package install

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// DefaultServiceAccountDir is where the kubelet mounts a pod's service
// account token and the cluster's CA.
const DefaultServiceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount"

// kubeconfigName names the cluster, user and context in braid's kubeconfig.
const kubeconfigName = "braid"

// Kubeconfig returns a kubeconfig for server that trusts the CA caData and
// authenticates with the bearer token. Both are embedded: braid runs on
// the host, where the installer's service account files are not mounted.
func Kubeconfig(server string, caData []byte, token string) ([]byte, error) {
	if token == "" {
		return nil, errors.New("kubeconfig: empty token")
	}
	cfg := clientcmdapi.NewConfig()
	cluster := clientcmdapi.NewCluster()
	cluster.Server = server
	cluster.CertificateAuthorityData = caData
	user := clientcmdapi.NewAuthInfo()
	user.Token = token
	kctx := clientcmdapi.NewContext()
	kctx.Cluster, kctx.AuthInfo = kubeconfigName, kubeconfigName
	cfg.Clusters[kubeconfigName] = cluster
	cfg.AuthInfos[kubeconfigName] = user
	cfg.Contexts[kubeconfigName] = kctx
	cfg.CurrentContext = kubeconfigName
	if err := clientcmd.Validate(*cfg); err != nil {
		return nil, fmt.Errorf("kubeconfig for %s: %w", server, err)
	}
	data, err := clientcmd.Write(*cfg)
	if err != nil {
		return nil, fmt.Errorf("encode kubeconfig for %s: %w", server, err)
	}
	return data, nil
}

// ServiceAccount reads the token and the CA certificate from dir/token and
// dir/ca.crt; an empty dir means DefaultServiceAccountDir. The kubelet
// rotates a projected token, so callers read it again before it expires.
func ServiceAccount(dir string) (token string, ca []byte, err error) {
	if dir == "" {
		dir = DefaultServiceAccountDir
	}
	tokenPath := filepath.Join(dir, "token")
	raw, err := os.ReadFile(tokenPath)
	if err != nil {
		return "", nil, fmt.Errorf("read service account token: %w", err)
	}
	if token = strings.TrimSpace(string(raw)); token == "" {
		return "", nil, fmt.Errorf("read service account token %s: empty", tokenPath)
	}
	ca, err = os.ReadFile(filepath.Join(dir, "ca.crt"))
	if err != nil {
		return "", nil, fmt.Errorf("read service account CA: %w", err)
	}
	return token, ca, nil
}
