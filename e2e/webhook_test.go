package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	nadclientset "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/client/clientset/versioned"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/braid-cni/braid/devices"
	"github.com/braid-cni/braid/e2e/framework"
	braidkube "github.com/braid-cni/braid/kube"
	"github.com/braid-cni/braid/webhook"
)

// TestWebhook: braid-webhook, self-signed, registered with the real API
// server through a ValidatingWebhookConfiguration whose caBundle it patches
// itself, refuses a broken NAD and a pod with a bad networks annotation,
// with braid's message, and lets good ones through. The configuration only
// matches this test's namespace, so the tests sharing the control plane
// are not affected, and it is deleted at the end.
func TestWebhook(t *testing.T) {
	kube, nads, ns := ownNamespace(t, "e2e-webhook")
	ctx := t.Context()
	w := startWebhook(t, kube, nads, ns)

	badJSON := `{"cniVersion":"1.0.0","name":"broken","type":"bridge",}`
	w.waitServing(t, nads, badJSON)

	nadTests := []struct {
		name, config string
		want         []string // substrings of the refusal; none: created
	}{
		{"broken", badJSON, []string{`denied the request`, `spec.config is not valid JSON: invalid character '}'`}},
		{"noplugins", `{"cniVersion":"1.0.0","name":"noplugins","plugins":[]}`, []string{`denied the request`, `spec.config: `, `no plugins`}},
		{"evil", `{"cniVersion":"1.0.0","name":"evil","type":"braid","binDir":"/tmp/attacker","logFile":"/etc/evil"}`, []string{`denied the request`, `spec.config: type is "braid", which is braid itself`}},
		{"evilshim", `{"cniVersion":"1.0.0","name":"evilshim","plugins":[{"type":"bridge"},{"type":"braid-shim","daemonSocketDir":"/tmp/attacker"}]}`, []string{`denied the request`, `spec.config: plugins[1].type is "braid-shim"`}},
		{"good", `{"cniVersion":"1.0.0","name":"good","type":"bridge","bridge":"br-good"}`, nil},
	}
	for _, tt := range nadTests {
		obj := &nadv1.NetworkAttachmentDefinition{
			ObjectMeta: metav1.ObjectMeta{Name: tt.name, Namespace: ns},
			Spec:       nadv1.NetworkAttachmentDefinitionSpec{Config: tt.config},
		}
		_, err := nads.K8sCniCncfIoV1().NetworkAttachmentDefinitions(ns).Create(ctx, obj, metav1.CreateOptions{})
		checkAdmission(t, "NAD "+tt.name, err, tt.want)
	}
	// An update to a broken config is refused too.
	good, err := nads.K8sCniCncfIoV1().NetworkAttachmentDefinitions(ns).Get(ctx, "good", metav1.GetOptions{})
	if err == nil {
		good.Spec.Config = `{"cniVersion":"1.0.0","type":`
		_, err = nads.K8sCniCncfIoV1().NetworkAttachmentDefinitions(ns).Update(ctx, good, metav1.UpdateOptions{})
		checkAdmission(t, "update of NAD good", err, []string{"denied the request", "spec.config is not valid JSON: unexpected end of JSON input"})
	} else {
		t.Errorf("get NAD good: %v", err)
	}

	// /inject: a pod naming two device-backed networks is created asking
	// for their devices.
	vf := &nadv1.NetworkAttachmentDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "vf", Namespace: ns, Annotations: map[string]string{devices.ResourceNameKey: "example.com/vf"}},
		Spec:       nadv1.NetworkAttachmentDefinitionSpec{Config: `{"cniVersion":"1.0.0","name":"vf","type":"sriov"}`},
	}
	if _, err := nads.K8sCniCncfIoV1().NetworkAttachmentDefinitions(ns).Create(ctx, vf, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create NAD vf: %v", err)
	}
	devPod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "vfs", Namespace: ns, Annotations: map[string]string{nadv1.NetworkAttachmentAnnot: "vf, vf@vf2, good"}},
		Spec:       corev1.PodSpec{NodeName: "node1", Containers: []corev1.Container{{Name: "c", Image: "pause"}}},
	}
	if created, err := kube.CoreV1().Pods(ns).Create(ctx, devPod, metav1.CreateOptions{}); err != nil {
		t.Errorf("create pod vfs: %v", err)
	} else {
		lim := created.Spec.Containers[0].Resources.Limits["example.com/vf"]
		req := created.Spec.Containers[0].Resources.Requests["example.com/vf"]
		if lim.Value() != 2 || req.Value() != 2 {
			t.Errorf("pod vfs was created with limits %v and requests %v, want example.com/vf: 2 injected", created.Spec.Containers[0].Resources.Limits, created.Spec.Containers[0].Resources.Requests)
		}
	}

	podTests := []struct {
		name, networks string
		want           []string
	}{
		{"badannotation", `[{"name":"good"`, []string{"denied the request", "metadata.annotations[k8s.v1.cni.cncf.io/networks]: "}},
		{"twice", `[{"name":"good","interface":"net1"},{"name":"good","interface":"net1"}]`, []string{"denied the request", `"net1" is already used by element 1`}},
		{"toomany", strings.TrimSuffix(strings.Repeat("good,", 33), ","), []string{"denied the request", "33 networks requested, more than the 32 a pod may have (maxNetworksPerPod)"}},
		{"goodpod", `[{"name":"good","interface":"net1"},{"name":"good","interface":"net2"}]`, nil},
	}
	for _, tt := range podTests {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: tt.name, Namespace: ns, Annotations: map[string]string{nadv1.NetworkAttachmentAnnot: tt.networks}},
			Spec:       corev1.PodSpec{NodeName: "node1", Containers: []corev1.Container{{Name: "c", Image: "pause"}}},
		}
		_, err := kube.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
		checkAdmission(t, "pod "+tt.name, err, tt.want)
	}
}

// checkAdmission fails t unless err is a refusal naming want, or, with no
// want, nil.
func checkAdmission(t *testing.T, what string, err error, want []string) {
	t.Helper()
	if len(want) == 0 {
		if err != nil {
			t.Errorf("create %s: %v, want it allowed", what, err)
		}
		return
	}
	if err == nil {
		t.Errorf("create %s allowed, want it refused", what)
		return
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("create %s refused with %q, which does not mention %q", what, err, w)
		}
	}
}

// testWebhook is braid-webhook running in this process on 127.0.0.1.
type testWebhook struct {
	addr, config string
	kube         kubernetes.Interface
}

// startWebhook registers a ValidatingWebhookConfiguration for namespace ns
// only, pointing at 127.0.0.1:<free port> (there is no kube-proxy to reach
// a Service), and starts the webhook with --self-signed on that port.
func startWebhook(t *testing.T, kube kubernetes.Interface, nads nadclientset.Interface, ns string) *testWebhook {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	w := &testWebhook{addr: addr, config: "braid-webhook-" + ns, kube: kube}
	url := "https://" + addr + "/validate"
	none := admissionregistrationv1.SideEffectClassNone
	fail := admissionregistrationv1.Fail
	timeout := int32(5)
	only := &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": ns}}
	hook := func(name, group, resource string, ops ...admissionregistrationv1.OperationType) admissionregistrationv1.ValidatingWebhook {
		return admissionregistrationv1.ValidatingWebhook{
			Name:                    name,
			ClientConfig:            admissionregistrationv1.WebhookClientConfig{URL: &url},
			Rules:                   []admissionregistrationv1.RuleWithOperations{{Operations: ops, Rule: admissionregistrationv1.Rule{APIGroups: []string{group}, APIVersions: []string{"v1"}, Resources: []string{resource}}}},
			FailurePolicy:           &fail, // here a webhook not reached must fail the test
			SideEffects:             &none,
			AdmissionReviewVersions: []string{"v1"},
			TimeoutSeconds:          &timeout,
			NamespaceSelector:       only,
		}
	}
	vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: w.config},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{
			hook("pods.braid.e2e", "", "pods", admissionregistrationv1.Create),
			hook("nads.braid.e2e", "k8s.cni.cncf.io", "network-attachment-definitions", admissionregistrationv1.Create, admissionregistrationv1.Update),
		},
	}
	if _, err := kube.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(t.Context(), vwc, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create ValidatingWebhookConfiguration: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := kube.AdmissionregistrationV1().ValidatingWebhookConfigurations().Delete(ctx, w.config, metav1.DeleteOptions{}); err != nil {
			t.Errorf("delete ValidatingWebhookConfiguration %s: %v", w.config, err)
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	// /inject, as deployments/webhook-inject.yaml registers it.
	injectURL := "https://" + addr + "/inject"
	ignore := admissionregistrationv1.Ignore
	never := admissionregistrationv1.NeverReinvocationPolicy
	mwc := &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: w.config + "-inject"},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name:                    "inject.braid.e2e",
			ClientConfig:            admissionregistrationv1.WebhookClientConfig{URL: &injectURL},
			Rules:                   []admissionregistrationv1.RuleWithOperations{{Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create}, Rule: admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}}}},
			FailurePolicy:           &ignore,
			SideEffects:             &none,
			AdmissionReviewVersions: []string{"v1"},
			TimeoutSeconds:          &timeout,
			NamespaceSelector:       only,
			ReinvocationPolicy:      &never,
		}},
	}
	if _, err := kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(t.Context(), mwc, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create MutatingWebhookConfiguration: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(ctx, mwc.Name, metav1.DeleteOptions{}); err != nil {
			t.Errorf("delete MutatingWebhookConfiguration %s: %v", mwc.Name, err)
		}
	})
	cfg := webhook.Config{
		Addr: addr, SelfSigned: true, WebhookConfig: w.config, MutatingWebhookConfig: mwc.Name, InjectResources: true,
		Service: "braid-webhook", Namespace: ns, Hosts: []string{"127.0.0.1"},
	}
	logs := &framework.LogBuffer{}
	go func() {
		done <- webhook.Run(ctx, cfg, kube, &braidkube.Clients{Core: kube, NADs: nads}, slog.New(slog.NewTextHandler(logs, nil)))
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("webhook: %v", err)
		}
		if t.Failed() {
			t.Logf("webhook log:\n%s", logs.String())
		}
	})
	return w
}

// waitServing waits for the caBundle to be patched, for the webhook to
// answer with a certificate of that CA for 127.0.0.1, and for the API
// server to call it (it picks up configuration changes asynchronously):
// a dry-run create of a NAD with badJSON is refused by braid.
func (w *testWebhook) waitServing(t *testing.T, nads nadclientset.Interface, badJSON string) {
	t.Helper()
	var last error
	deadline := time.Now().Add(60 * time.Second)
	for ; time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if last = w.ready(t.Context(), nads, badJSON); last == nil {
			return
		}
	}
	t.Fatalf("webhook not serving after 60s: %v", last)
}

func (w *testWebhook) ready(ctx context.Context, nads nadclientset.Interface, badJSON string) error {
	vwc, err := w.kube.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, w.config, metav1.GetOptions{})
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	for _, h := range vwc.Webhooks {
		if !pool.AppendCertsFromPEM(h.ClientConfig.CABundle) {
			return fmt.Errorf("webhook %s: no caBundle yet", h.Name)
		}
	}
	mwc, err := w.kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, w.config+"-inject", metav1.GetOptions{})
	if err != nil {
		return err
	}
	if !bytes.Equal(mwc.Webhooks[0].ClientConfig.CABundle, vwc.Webhooks[0].ClientConfig.CABundle) {
		return errors.New("the MutatingWebhookConfiguration has not the CA yet")
	}
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := client.Get("https://" + w.addr + "/healthz")
	if err != nil {
		return fmt.Errorf("healthz with the caBundle's CA: %w", err)
	}
	_ = resp.Body.Close()
	probe := &nadv1.NetworkAttachmentDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "probe", Namespace: vwc.Webhooks[0].NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"]},
		Spec:       nadv1.NetworkAttachmentDefinitionSpec{Config: badJSON},
	}
	_, err = nads.K8sCniCncfIoV1().NetworkAttachmentDefinitions(probe.Namespace).Create(ctx, probe, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	switch {
	case err == nil:
		return errors.New("the API server does not call the webhook yet")
	case !strings.Contains(err.Error(), "spec.config is not valid JSON: invalid character"):
		return fmt.Errorf("dry-run create: %w", err)
	}
	return nil
}
