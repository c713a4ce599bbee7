package framework

import (
	"fmt"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// WriteKubeconfig writes a kubeconfig for the admin or for BraidUser, with the
// API server's CA embedded, to path (mode 0600, parent directories created).
func (cp *ControlPlane) WriteKubeconfig(path string, admin bool) error {
	if admin {
		return cp.WriteTokenKubeconfig(path, "admin", cp.tokens.admin)
	}
	return cp.WriteTokenKubeconfig(path, "braid", cp.tokens.braid)
}

// WriteTokenKubeconfig writes a kubeconfig for the user that token
// authenticates (named user in the file), as WriteKubeconfig does.
func (cp *ControlPlane) WriteTokenKubeconfig(path, user, token string) error {
	cfg := cp.config(token)
	const name = "braid-e2e"
	kc := clientcmdapi.NewConfig()
	kc.Clusters[name] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos[user] = &clientcmdapi.AuthInfo{Token: cfg.BearerToken}
	kc.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: user}
	kc.CurrentContext = name
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		return fmt.Errorf("write kubeconfig %s: %w", path, err)
	}
	return nil
}
