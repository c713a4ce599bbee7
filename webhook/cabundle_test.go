package webhook

import (
	"bytes"
	"context"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func TestPatchCABundle(t *testing.T) {
	vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "braid", ResourceVersion: "7"},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{
			{Name: "pods.braid.cni", ClientConfig: admissionregistrationv1.WebhookClientConfig{CABundle: []byte("old")}},
			{Name: "nads.braid.cni"},
		},
	}
	client := fake.NewClientset(vwc)
	ca := []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
	if err := PatchCABundle(context.Background(), client, "braid", ca); err != nil {
		t.Fatal(err)
	}
	got, err := client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(context.Background(), "braid", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range got.Webhooks {
		if !bytes.Equal(w.ClientConfig.CABundle, ca) {
			t.Errorf("webhook %s caBundle = %q, want the CA", w.Name, w.ClientConfig.CABundle)
		}
	}
	if err := PatchCABundle(context.Background(), client, "nosuch", ca); err == nil {
		t.Error("patching a missing configuration succeeded")
	}
}

// TestSharedCA: replicas get the one CA; an expiring one is replaced.
func TestSharedCA(t *testing.T) {
	client := fake.NewClientset()
	now := time.Now()
	first, err := SharedCA(context.Background(), client, "kube-system", "braid-webhook-ca", now)
	if err != nil {
		t.Fatal(err)
	}
	second, err := SharedCA(context.Background(), client, "kube-system", "braid-webhook-ca", now)
	if err != nil {
		t.Fatal(err)
	}
	if !first.Cert.Equal(second.Cert) {
		t.Error("the second replica got another CA")
	}
	later, err := SharedCA(context.Background(), client, "kube-system", "braid-webhook-ca", now.Add(certLifetime))
	if err != nil {
		t.Fatal(err)
	}
	if later.Cert.Equal(first.Cert) {
		t.Error("an expiring CA was kept")
	}
}
