package webhook

import (
	"bytes"
	"context"
	"log/slog"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
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
	mwc := &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "braid-inject", ResourceVersion: "8"},
		Webhooks:   []admissionregistrationv1.MutatingWebhook{{Name: "inject.braid.cni"}},
	}
	client := fake.NewClientset(vwc, mwc)
	ca := []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
	ctx := context.Background()
	for _, kc := range [][2]string{{Validating, "braid"}, {Mutating, "braid-inject"}} {
		patched, err := PatchCABundle(ctx, client, kc[0], kc[1], ca)
		if err != nil || !patched {
			t.Fatalf("%s %s: patched %v, %v", kc[0], kc[1], patched, err)
		}
		// Once they hold the CA, nothing is written.
		if patched, err := PatchCABundle(ctx, client, kc[0], kc[1], ca); err != nil || patched {
			t.Errorf("%s %s patched again: %v, %v", kc[0], kc[1], patched, err)
		}
	}
	got, err := client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, "braid", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range got.Webhooks {
		if !bytes.Equal(w.ClientConfig.CABundle, ca) {
			t.Errorf("webhook %s caBundle = %q, want the CA", w.Name, w.ClientConfig.CABundle)
		}
	}
	gotM, err := client.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, "braid-inject", metav1.GetOptions{})
	if err != nil || !bytes.Equal(gotM.Webhooks[0].ClientConfig.CABundle, ca) {
		t.Errorf("mutating caBundle: %v, %v", gotM, err)
	}
	if _, err := PatchCABundle(ctx, client, Validating, "nosuch", ca); !apierrors.IsNotFound(err) {
		t.Errorf("patching a missing configuration: %v, want not found", err)
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

// keepCABundles checks at once: the validating configuration gets the CA
// while the mutating one is not there yet (the 30 s re-check that finds it
// later is PatchCABundle again, tested above).
func TestKeepCABundles(t *testing.T) {
	vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "braid", ResourceVersion: "1"},
		Webhooks:   []admissionregistrationv1.ValidatingWebhook{{Name: "pods.braid.cni"}},
	}
	client := fake.NewClientset(vwc)
	ca := []byte("ca")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		keepCABundles(ctx, client, Config{WebhookConfig: "braid", MutatingWebhookConfig: "braid-inject"}, ca, slog.New(slog.DiscardHandler))
	}()
	defer func() { cancel(); <-done }()
	waitFor(t, func() bool {
		got, _ := client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, "braid", metav1.GetOptions{})
		return bytes.Equal(got.Webhooks[0].ClientConfig.CABundle, ca)
	})
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("condition not met in 5 s")
}
