package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8stypes "k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// Kinds of webhook configuration whose caBundle braid-webhook keeps.
const (
	Validating = "ValidatingWebhookConfiguration"
	Mutating   = "MutatingWebhookConfiguration"
)

// bundles reads the caBundle of every webhook of the named configuration of
// kind, and its resourceVersion.
func bundles(ctx context.Context, client kubernetes.Interface, kind, name string) ([][]byte, string, error) {
	var out [][]byte
	var rv string
	switch kind {
	case Validating:
		c, err := client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, "", fmt.Errorf("get %s %s: %w", kind, name, err)
		}
		for _, h := range c.Webhooks {
			out = append(out, h.ClientConfig.CABundle)
		}
		rv = c.ResourceVersion
	case Mutating:
		c, err := client.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, "", fmt.Errorf("get %s %s: %w", kind, name, err)
		}
		for _, h := range c.Webhooks {
			out = append(out, h.ClientConfig.CABundle)
		}
		rv = c.ResourceVersion
	default:
		return nil, "", fmt.Errorf("unknown webhook configuration kind %q", kind)
	}
	if len(out) == 0 {
		return nil, "", fmt.Errorf("%s %s has no webhooks", kind, name)
	}
	return out, rv, nil
}

// PatchCABundle sets caBundle of every webhook of the named configuration
// of kind (Validating or Mutating) to caPEM, unless all hold it already.
// One JSON patch, guarded by a test of the resourceVersion, so a
// configuration edited meanwhile is not half patched. It reports whether
// it patched.
func PatchCABundle(ctx context.Context, client kubernetes.Interface, kind, name string, caPEM []byte) (bool, error) {
	current, rv, err := bundles(ctx, client, kind, name)
	if err != nil {
		return false, err
	}
	stale := false
	for _, b := range current {
		stale = stale || !bytes.Equal(b, caPEM)
	}
	if !stale {
		return false, nil
	}
	type op struct {
		Op    string `json:"op"`
		Path  string `json:"path"`
		Value any    `json:"value"`
	}
	ops := []op{{Op: "test", Path: "/metadata/resourceVersion", Value: rv}}
	for i := range current {
		// "add" sets a member whether or not it is there; a []byte
		// encodes as base64, as caBundle wants.
		ops = append(ops, op{Op: "add", Path: fmt.Sprintf("/webhooks/%d/clientConfig/caBundle", i), Value: caPEM})
	}
	patch, err := json.Marshal(ops)
	if err != nil {
		return false, fmt.Errorf("encode caBundle patch of %s %s: %w", kind, name, err)
	}
	if kind == Validating {
		_, err = client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Patch(ctx, name, k8stypes.JSONPatchType, patch, metav1.PatchOptions{})
	} else {
		_, err = client.AdmissionregistrationV1().MutatingWebhookConfigurations().Patch(ctx, name, k8stypes.JSONPatchType, patch, metav1.PatchOptions{})
	}
	if err != nil {
		return false, fmt.Errorf("patch caBundle of %s %s: %w", kind, name, err)
	}
	return true, nil
}

// ErrNoCASecret says the CA Secret is not there: braid-webhook fills the
// Secret deployments/webhook.yaml ships, and may not create one.
var ErrNoCASecret = errors.New("the CA Secret does not exist (braid-webhook fills it but does not create it: apply deployments/webhook.yaml, which ships it empty)")

// SharedCA returns the CA kept in the Secret namespace/name, so that every
// replica serves with a certificate of the one CA the caBundle holds. The
// Secret ships empty in deployments/webhook.yaml; the first replica fills
// it, and a replica that finds it unreadable or about to expire replaces
// the CA, each with an update of the Secret it read: braid-webhook's Role
// grants get and update on that one name, and no create. A missing Secret
// is an error wrapping ErrNoCASecret.
func SharedCA(ctx context.Context, client kubernetes.Interface, namespace, name string, now time.Time) (*CA, error) {
	secrets := client.CoreV1().Secrets(namespace)
	for range 3 {
		s, err := secrets.Get(ctx, name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			return nil, fmt.Errorf("CA secret %s/%s: %w", namespace, name, ErrNoCASecret)
		case err != nil:
			return nil, fmt.Errorf("get CA secret %s/%s: %w", namespace, name, err)
		}
		ca, err := ParseCA(s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey])
		if err == nil && now.Add(24*time.Hour).Before(ca.Cert.NotAfter) {
			return ca, nil
		}
		// Empty as shipped, unreadable or about to expire: put a new CA
		// in. The update carries the resourceVersion read, so it fails on
		// a conflict if another replica wrote first; then use theirs.
		ca, err = NewCA(now)
		if err != nil {
			return nil, err
		}
		if _, err := secrets.Update(ctx, withCA(s, ca), metav1.UpdateOptions{}); err != nil {
			if apierrors.IsConflict(err) {
				continue
			}
			return nil, fmt.Errorf("write the CA into secret %s/%s: %w", namespace, name, err)
		}
		return ca, nil
	}
	return nil, fmt.Errorf("CA secret %s/%s: changed by others three times in a row", namespace, name)
}

// withCA is a copy of the Secret s holding ca and nothing else. Its type,
// labels and annotations stay: a Secret's type cannot change.
func withCA(s *corev1.Secret, ca *CA) *corev1.Secret {
	next := s.DeepCopy()
	next.Data = map[string][]byte{corev1.TLSCertKey: ca.CertPEM, corev1.TLSPrivateKeyKey: ca.KeyPEM}
	next.StringData = nil
	return next
}
