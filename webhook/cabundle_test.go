package webhook

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
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

// shippedSecret is the CA Secret as deployments/webhook.yaml ships it.
func shippedSecret() *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "braid-webhook-ca", Namespace: "kube-system", ResourceVersion: "1"},
		Type:       corev1.SecretTypeOpaque,
	}
}

// TestSharedCA: the first replica fills the shipped Secret, the second
// gets the same CA, an expiring one is replaced; the Secret keeps its type
// and nothing is ever created.
func TestSharedCA(t *testing.T) {
	for _, typ := range []corev1.SecretType{corev1.SecretTypeOpaque, corev1.SecretTypeTLS} {
		t.Run(string(typ), func(t *testing.T) {
			secret := shippedSecret()
			secret.Type = typ
			client := fake.NewClientset(secret)
			ctx := context.Background()
			now := time.Now()
			first, err := SharedCA(ctx, client, "kube-system", "braid-webhook-ca", now)
			if err != nil {
				t.Fatal(err)
			}
			second, err := SharedCA(ctx, client, "kube-system", "braid-webhook-ca", now)
			if err != nil {
				t.Fatal(err)
			}
			if !first.Cert.Equal(second.Cert) {
				t.Error("the second replica got another CA")
			}
			later, err := SharedCA(ctx, client, "kube-system", "braid-webhook-ca", now.Add(certLifetime))
			if err != nil {
				t.Fatal(err)
			}
			if later.Cert.Equal(first.Cert) {
				t.Error("an expiring CA was kept")
			}
			got, err := client.CoreV1().Secrets("kube-system").Get(ctx, "braid-webhook-ca", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if got.Type != typ || !bytes.Equal(got.Data[corev1.TLSCertKey], later.CertPEM) {
				t.Errorf("secret type %s, holds the last CA %v; want %s, true", got.Type, bytes.Equal(got.Data[corev1.TLSCertKey], later.CertPEM), typ)
			}
			checkVerbs(t, client, "get", "update")
		})
	}
}

// TestSharedCAMissing: without the shipped Secret the webhook says so and
// creates none.
func TestSharedCAMissing(t *testing.T) {
	client := fake.NewClientset()
	_, err := SharedCA(context.Background(), client, "kube-system", "braid-webhook-ca", time.Now())
	if !errors.Is(err, ErrNoCASecret) || !strings.Contains(err.Error(), "kube-system/braid-webhook-ca") {
		t.Errorf("error %v, want ErrNoCASecret naming kube-system/braid-webhook-ca", err)
	}
	checkVerbs(t, client, "get")
}

// TestSharedCARace: another replica fills the Secret between this one's
// get and update; the update conflicts and this replica takes their CA.
func TestSharedCARace(t *testing.T) {
	client := fake.NewClientset(shippedSecret())
	now := time.Now()
	theirs, err := NewCA(now)
	if err != nil {
		t.Fatal(err)
	}
	raced := false
	client.PrependReactor("update", "secrets", func(k8stesting.Action) (bool, runtime.Object, error) {
		if raced {
			return false, nil, nil
		}
		raced = true
		filled := withCA(shippedSecret(), theirs)
		filled.ResourceVersion = "2"
		if err := client.Tracker().Update(corev1.SchemeGroupVersion.WithResource("secrets"), filled, "kube-system"); err != nil {
			t.Fatal(err)
		}
		return true, nil, apierrors.NewConflict(corev1.Resource("secrets"), "braid-webhook-ca", errors.New("resourceVersion changed"))
	})
	got, err := SharedCA(context.Background(), client, "kube-system", "braid-webhook-ca", now)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Cert.Equal(theirs.Cert) {
		t.Error("after the conflict the replica did not take the other replica's CA")
	}
}

// checkVerbs fails unless the client was asked only the verbs the Role in
// deployments/webhook.yaml grants on the Secret.
func checkVerbs(t *testing.T, client *fake.Clientset, allowed ...string) {
	t.Helper()
	for _, a := range client.Actions() {
		if !slices.Contains(allowed, a.GetVerb()) {
			t.Errorf("%s %s: the webhook may only %v", a.GetVerb(), a.GetResource().Resource, allowed)
		}
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
