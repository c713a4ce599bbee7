package framework

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"strings"
)

const (
	// BraidUser is the user name of the least-privilege token. It is the name
	// the API server gives the kube-system/braid service account, so the
	// ClusterRoleBinding in deployments/rbac.yaml applies to it.
	BraidUser = "system:serviceaccount:kube-system:braid"

	adminUser = "braid-e2e-admin"
)

// tokens are the static bearer tokens of the two users the API server knows.
type tokens struct {
	admin string
	braid string
}

func newTokens() (tokens, error) {
	admin, err := randomToken()
	if err != nil {
		return tokens{}, err
	}
	braid, err := randomToken()
	if err != nil {
		return tokens{}, err
	}
	return tokens{admin: admin, braid: braid}, nil
}

func randomToken() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate token: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// writeTokenFile writes the CSV format of --token-auth-file:
// token,user,uid,"group1,group2".
func (t tokens) writeTokenFile(path string) error {
	rows := []string{
		fmt.Sprintf("%s,%s,%s,%q", t.admin, adminUser, adminUser, "system:masters"),
		fmt.Sprintf("%s,%s,%s,%q", t.braid, BraidUser, "braid",
			strings.Join([]string{"system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"}, ",")),
	}
	if err := os.WriteFile(path, []byte(strings.Join(rows, "\n")+"\n"), 0o600); err != nil {
		return fmt.Errorf("write token file: %w", err)
	}
	return nil
}

// writeServiceAccountKey writes a PEM RSA private key. The API server signs
// service account tokens with it and derives the verifying public key from it.
func writeServiceAccountKey(path string) error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return fmt.Errorf("generate service account key: %w", err)
	}
	block := &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		return fmt.Errorf("write service account key: %w", err)
	}
	return nil
}

// freePorts returns n distinct TCP ports on 127.0.0.1 that were free a
// moment ago. All listeners stay open until every port is picked, so the
// kernel cannot hand out the same port twice.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("pick free port: %w", err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
