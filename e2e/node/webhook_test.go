package node

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/yaml"

	"github.com/braid-cni/braid/e2e/framework"
)

// TestWebhookOnNode: braid-webhook installed from deployments/webhook.yaml
// runs as a pod on the node (its shipped Secret, Role and ClusterRole as
// they are) and the API server refuses, through it, a NAD that would run
// braid itself, whatever a namespace user puts in it. The one change to
// the manifest: this node has no kube-proxy, so the webhook listens on the
// host's network and the API server calls it by URL.
func TestWebhookOnNode(t *testing.T) {
	ctx := t.Context()
	c := shared
	addr, err := framework.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(addr)
	if err := installWebhook(ctx, c, port); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { uninstallWebhook(t, c) })

	_, nads, err := c.cp.Clients()
	if err != nil {
		t.Fatal(err)
	}
	client, _, err := c.cp.Clients()
	if err != nil {
		t.Fatal(err)
	}
	ns := "webhook-node"
	if err := framework.CreateNamespaceWithSA(ctx, client, ns); err != nil {
		t.Fatal(err)
	}
	create := func(name, config string) error {
		_, err := nads.K8sCniCncfIoV1().NetworkAttachmentDefinitions(ns).Create(ctx, &nadv1.NetworkAttachmentDefinition{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec:       nadv1.NetworkAttachmentDefinitionSpec{Config: config},
		}, metav1.CreateOptions{})
		return err
	}
	// The webhook answers once its pod is ready and the caBundle is in.
	var err2 error
	if err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, installTimeout, true, func(ctx context.Context) (bool, error) {
		err2 = create("probe-broken", `{"cniVersion":"1.0.0","type":`)
		return err2 != nil && strings.Contains(err2.Error(), "denied the request"), nil
	}); err != nil {
		t.Fatalf("the webhook never refused a broken NAD: %v (last: %v)", err, err2)
	}

	evil := `{"cniVersion":"1.0.0","name":"evil","type":"braid","binDir":"/var/lib/kubelet/pods/x/volumes/kubernetes.io~empty-dir/tools","logFile":"/etc/cron.d/evil"}`
	err = create("evil", evil)
	if err == nil || !strings.Contains(err.Error(), "denied the request") || !strings.Contains(err.Error(), `type is "braid", which is braid itself`) {
		t.Errorf("create a braid-typed NAD = %v, want it refused by braid-webhook", err)
	}
	if _, err := nads.K8sCniCncfIoV1().NetworkAttachmentDefinitions(ns).Get(ctx, "evil", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the braid-typed NAD was stored: %v", err)
	}
	if err := create("good", `{"cniVersion":"1.0.0","name":"good","type":"bridge","bridge":"br-good"}`); err != nil {
		t.Errorf("create a good NAD: %v", err)
	}
}

// installWebhook applies deployments/webhook.yaml: the objects it ships as
// they are, the Deployment on the host's network on port (one replica:
// one node), and the configuration calling it there by URL.
func installWebhook(ctx context.Context, c *cluster, port string) error {
	file := filepath.Join(c.root, "deployments", "webhook.yaml")
	if err := framework.EnsureObjectsOf(ctx, c.cp.AdminConfig(), file, "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Secret", "Role", "RoleBinding"); err != nil {
		return err
	}
	var dep appsv1.Deployment
	var vwc admissionv1.ValidatingWebhookConfiguration
	if err := decodeKind(file, "Deployment", &dep); err != nil {
		return err
	}
	if err := decodeKind(file, "ValidatingWebhookConfiguration", &vwc); err != nil {
		return err
	}
	one := int32(1)
	dep.Spec.Replicas = &one
	spec := &dep.Spec.Template.Spec
	spec.HostNetwork = true
	container := &spec.Containers[0]
	for i, arg := range container.Command {
		if strings.HasPrefix(arg, "--addr=") {
			container.Command[i] = "--addr=:" + port
		}
	}
	container.Command = append(container.Command, "--host=127.0.0.1")
	n, err := parsePort(port)
	if err != nil {
		return err
	}
	container.Ports = []corev1.ContainerPort{{Name: "https", ContainerPort: n, HostPort: n}}
	host, apiPort, err := net.SplitHostPort(strings.TrimPrefix(c.cp.AdminConfig().Host, "https://"))
	if err != nil {
		return err
	}
	container.Env = append(container.Env,
		corev1.EnvVar{Name: "KUBERNETES_SERVICE_HOST", Value: host},
		corev1.EnvVar{Name: "KUBERNETES_SERVICE_PORT", Value: apiPort})
	url := "https://127.0.0.1:" + port + "/validate"
	for i := range vwc.Webhooks {
		vwc.Webhooks[i].ClientConfig = admissionv1.WebhookClientConfig{URL: &url}
	}
	client, _, err := c.cp.Clients()
	if err != nil {
		return err
	}
	if _, err := client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(ctx, &vwc, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create ValidatingWebhookConfiguration %s: %w", vwc.Name, err)
	}
	if _, err := client.AppsV1().Deployments(dep.Namespace).Create(ctx, &dep, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create Deployment %s/%s: %w", dep.Namespace, dep.Name, err)
	}
	return c.podReady(ctx, "braid-webhook")
}

// uninstallWebhook removes the configuration first: with the webhook gone
// and failurePolicy Fail, no NAD could be created any more.
func uninstallWebhook(t *testing.T, c *cluster) {
	ctx, cancel := context.WithTimeout(context.Background(), installTimeout)
	defer cancel()
	client, nads, err := c.cp.Clients()
	if err != nil {
		t.Error(err)
		return
	}
	del := metav1.DeleteOptions{}
	for what, err := range map[string]error{
		"webhook configuration": client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Delete(ctx, "braid-webhook", del),
		"deployment":            client.AppsV1().Deployments(systemNamespace).Delete(ctx, "braid-webhook", del),
		"namespace objects":     framework.DeleteNamespaceObjects(ctx, client, nads, "webhook-node"),
	} {
		if err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("uninstall the webhook's %s: %v", what, err)
		}
	}
	pods, err := c.pods(ctx, "braid-webhook")
	if err != nil {
		t.Error(err)
		return
	}
	for _, p := range pods {
		if err := framework.WaitForPodGone(ctx, client, systemNamespace, p.Name, installTimeout); err != nil {
			t.Errorf("webhook pod %s: %v", p.Name, err)
		}
	}
}

// decodeKind decodes the one document of kind in a manifest file.
func decodeKind(file, kind string, obj any) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	for _, doc := range strings.Split(string(data), "\n---\n") {
		var meta metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil || meta.Kind != kind {
			continue
		}
		if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
			return fmt.Errorf("decode the %s of %s: %w", kind, file, err)
		}
		return nil
	}
	return fmt.Errorf("%s holds no %s", file, kind)
}

func parsePort(s string) (int32, error) {
	var n int32
	if _, err := fmt.Sscanf(s, "%d", &n); err != nil {
		return 0, fmt.Errorf("port %q: %w", s, err)
	}
	return n, nil
}
