package framework

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	nadclientset "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/client/clientset/versioned"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

const smokeNamespace = "smoke"

func TestControlPlane(t *testing.T) {
	start := time.Now()
	cp := StartForTest(t)
	t.Logf("control plane ready in %v", time.Since(start).Round(time.Millisecond))
	ctx := t.Context()

	admin, adminNAD, err := cp.Clients()
	if err != nil {
		t.Fatal(err)
	}
	if err := InstallNADCRD(ctx, cp.AdminConfig()); err != nil {
		t.Fatal(err)
	}
	if err := InstallNADCRD(ctx, cp.AdminConfig()); err != nil {
		t.Fatalf("second install must accept the existing CRD: %v", err)
	}
	if err := EnsureObjects(ctx, cp.AdminConfig(), "deployments/crd.yaml"); err != nil {
		t.Fatalf("applying crd.yaml must accept the existing CRD: %v", err)
	}
	for range 2 { // the second pass proves existing objects are accepted
		if err := EnsureObjects(ctx, cp.AdminConfig(), "deployments/rbac.yaml"); err != nil {
			t.Fatal(err)
		}
	}
	if err := CreateNamespaceWithSA(ctx, admin, smokeNamespace); err != nil {
		t.Fatal(err)
	}
	createSmokeObjects(ctx, t, admin, adminNAD)

	t.Run("least privilege", func(t *testing.T) { testBraidUser(ctx, t, cp) })
	t.Run("kubeconfig", func(t *testing.T) { testKubeconfig(ctx, t, cp) })
	t.Run("api server restart", func(t *testing.T) { testRestart(ctx, t, cp) })

	if err := DeleteNamespaceObjects(ctx, admin, adminNAD, smokeNamespace); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CoreV1().Pods(smokeNamespace).Get(ctx, "pod1", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("get deleted pod: got %v, want NotFound", err)
	}
}

func createSmokeObjects(ctx context.Context, t *testing.T, kc kubernetes.Interface, nc nadclientset.Interface) {
	t.Helper()
	nad := &nadv1.NetworkAttachmentDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "bridge1", Namespace: smokeNamespace},
		Spec:       nadv1.NetworkAttachmentDefinitionSpec{Config: `{"cniVersion":"1.0.0","type":"bridge"}`},
	}
	if _, err := nc.K8sCniCncfIoV1().NetworkAttachmentDefinitions(smokeNamespace).Create(ctx, nad, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create NAD: %v", err)
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "pod1", Namespace: smokeNamespace},
		Spec: corev1.PodSpec{
			NodeName:   "node1", // bound already, so nothing would schedule it
			Containers: []corev1.Container{{Name: "c", Image: "example.invalid/pause"}},
		},
	}
	if _, err := kc.CoreV1().Pods(smokeNamespace).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create pod: %v", err)
	}
}

func testBraidUser(ctx context.Context, t *testing.T, cp *ControlPlane) {
	kc, err := kubernetes.NewForConfig(cp.BraidConfig())
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nadclientset.NewForConfig(cp.BraidConfig())
	if err != nil {
		t.Fatal(err)
	}
	pods := kc.CoreV1().Pods(smokeNamespace)
	if _, err := pods.Get(ctx, "pod1", metav1.GetOptions{}); err != nil {
		t.Errorf("get pod as braid: %v", err)
	}
	patch := []byte(`{"metadata":{"annotations":{"k8s.v1.cni.cncf.io/network-status":"[]"}}}`)
	patched, err := pods.Patch(ctx, "pod1", types.MergePatchType, patch, metav1.PatchOptions{}, "status")
	if err != nil {
		t.Errorf("patch pods/status as braid: %v", err)
	} else if got := patched.Annotations["k8s.v1.cni.cncf.io/network-status"]; got != "[]" {
		t.Errorf("patched network-status annotation = %q, want %q", got, "[]")
	}
	nads := nc.K8sCniCncfIoV1().NetworkAttachmentDefinitions(smokeNamespace)
	if _, err := nads.Get(ctx, "bridge1", metav1.GetOptions{}); err != nil {
		t.Errorf("get NAD as braid: %v", err)
	}
	denied := []struct {
		name string
		call func() error
	}{
		{"delete pod", func() error { return pods.Delete(ctx, "pod1", metav1.DeleteOptions{}) }},
		{"list pods", func() error { _, err := pods.List(ctx, metav1.ListOptions{}); return err }},
		{"list NADs", func() error { _, err := nads.List(ctx, metav1.ListOptions{}); return err }},
		{"update pod", func() error {
			_, err := pods.Patch(ctx, "pod1", types.MergePatchType, patch, metav1.PatchOptions{})
			return err
		}},
		{"list secrets", func() error {
			_, err := kc.CoreV1().Secrets(smokeNamespace).List(ctx, metav1.ListOptions{})
			return err
		}},
	}
	for _, d := range denied {
		if err := d.call(); !apierrors.IsForbidden(err) {
			t.Errorf("%s as braid: got %v, want Forbidden", d.name, err)
		}
	}
}

func testKubeconfig(ctx context.Context, t *testing.T, cp *ControlPlane) {
	for _, admin := range []bool{true, false} {
		path := filepath.Join(t.TempDir(), "kubeconfig")
		if err := cp.WriteKubeconfig(path, admin); err != nil {
			t.Fatal(err)
		}
		cfg, err := clientcmd.BuildConfigFromFlags("", path)
		if err != nil {
			t.Fatal(err)
		}
		kc, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		// Verifies the embedded CA as well as the token.
		if _, err := kc.CoreV1().Pods(smokeNamespace).Get(ctx, "pod1", metav1.GetOptions{}); err != nil {
			t.Errorf("get pod with kubeconfig (admin=%v): %v", admin, err)
		}
	}
}

func testRestart(ctx context.Context, t *testing.T, cp *ControlPlane) {
	kc, err := kubernetes.NewForConfig(cp.BraidConfig())
	if err != nil {
		t.Fatal(err)
	}
	get := func() error {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_, err := kc.CoreV1().Pods(smokeNamespace).Get(ctx, "pod1", metav1.GetOptions{})
		return err
	}
	stopped := time.Now()
	cp.StopAPIServer()
	t.Logf("API server stopped in %v", time.Since(stopped).Round(time.Millisecond))
	if err := get(); err == nil {
		t.Fatal("get pod with the API server stopped: got no error")
	}
	started := time.Now()
	if err := cp.StartAPIServer(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("API server restarted in %v", time.Since(started).Round(time.Millisecond))
	if err := get(); err != nil {
		t.Errorf("get pod after restart: %v", err)
	}
}
