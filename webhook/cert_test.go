package webhook

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"testing"
	"time"
)

func TestSelfSignedCertificate(t *testing.T) {
	now := time.Now()
	ca, err := NewCA(now)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Serving([]string{"braid-webhook.kube-system.svc", "127.0.0.1"}, now)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(ca.CertPEM) {
		t.Fatal("CA PEM does not parse")
	}
	for _, name := range []string{"braid-webhook.kube-system.svc", "127.0.0.1"} {
		if _, err := cert.Leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			t.Errorf("serving certificate does not verify for %s: %v", name, err)
		}
	}
	for _, name := range []string{"other.kube-system.svc", "127.0.0.2"} {
		if _, err := cert.Leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: roots}); err == nil {
			t.Errorf("serving certificate verifies for %s, want it not to", name)
		}
	}
	// Another CA's certificate must not verify under this one.
	other, err := NewCA(now)
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := other.Serving([]string{"127.0.0.1"}, now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := foreign.Leaf.Verify(x509.VerifyOptions{DNSName: "127.0.0.1", Roots: roots}); err == nil {
		t.Error("a certificate of another CA verifies")
	}
	key, ok := cert.PrivateKey.(*ecdsa.PrivateKey)
	if !ok || key.Curve != elliptic.P256() {
		t.Errorf("serving key %T, want ECDSA P-256", cert.PrivateKey)
	}
	if caKey := ca.Cert.PublicKey.(*ecdsa.PublicKey); caKey.Curve != elliptic.P256() {
		t.Errorf("CA key curve %v, want P-256", caKey.Curve.Params().Name)
	}
	for what, c := range map[string]*x509.Certificate{"CA": ca.Cert, "serving": cert.Leaf} {
		if life := c.NotAfter.Sub(now); life < 364*24*time.Hour || life > 366*24*time.Hour {
			t.Errorf("%s certificate valid for %s, want a year", what, life)
		}
	}
	if cert.Leaf.IsCA {
		t.Error("serving certificate is a CA")
	}
}

func TestParseCARoundTrip(t *testing.T) {
	ca, err := NewCA(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	again, err := ParseCA(ca.CertPEM, ca.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Cert.Equal(ca.Cert) || !again.Key.Equal(ca.Key) {
		t.Error("ParseCA does not give back the CA")
	}
	if _, err := ParseCA([]byte("junk"), ca.KeyPEM); err == nil {
		t.Error("ParseCA accepted junk")
	}
	serving, err := ca.Serving([]string{"x"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseCA(pemBlock("CERTIFICATE", serving.Certificate[0]), ca.KeyPEM); err == nil {
		t.Error("ParseCA accepted a certificate that is not a CA")
	}
}
