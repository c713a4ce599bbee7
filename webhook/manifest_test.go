package webhook

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"sigs.k8s.io/yaml"
)

// TestCASecretManifest keeps deployments/webhook.yaml and SharedCA in
// step: the Secret the Deployment's --ca-secret names ships empty, the
// Role grants get and update on that name and nothing else on Secrets,
// and SharedCA fills the shipped Secret with those two verbs alone.
func TestCASecretManifest(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "deployments", "webhook.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var secret *corev1.Secret
	var roles []rbacv1.Role
	var clusterRoles []rbacv1.ClusterRole
	var args []string
	for i, doc := range strings.Split(string(data), "\n---\n") {
		var meta metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			t.Fatalf("document %d: %v", i+1, err)
		}
		var into any
		switch meta.Kind {
		case "Secret":
			secret = &corev1.Secret{}
			into = secret
		case "Role":
			roles = append(roles, rbacv1.Role{})
			into = &roles[len(roles)-1]
		case "ClusterRole":
			clusterRoles = append(clusterRoles, rbacv1.ClusterRole{})
			into = &clusterRoles[len(clusterRoles)-1]
		case "Deployment":
			var d appsv1.Deployment
			if err := yaml.UnmarshalStrict([]byte(doc), &d); err != nil {
				t.Fatalf("document %d (Deployment): %v", i+1, err)
			}
			args = d.Spec.Template.Spec.Containers[0].Command
			continue
		default:
			continue
		}
		if err := yaml.UnmarshalStrict([]byte(doc), into); err != nil {
			t.Fatalf("document %d (%s): %v", i+1, meta.Kind, err)
		}
	}
	name, namespace := flagValue(args, "--ca-secret"), flagValue(args, "--namespace")
	if secret == nil || secret.Name != name || secret.Namespace != namespace || name == "" {
		t.Fatalf("the Deployment keeps its CA in Secret %s/%s, the file ships %v", namespace, name, secret)
	}
	if secret.Type != corev1.SecretTypeOpaque || len(secret.Data) != 0 || len(secret.StringData) != 0 {
		t.Errorf("Secret %s/%s: type %s with %d keys, want Opaque and empty (re-applying must not touch the CA)", namespace, name, secret.Type, len(secret.Data)+len(secret.StringData))
	}
	var secretRules []rbacv1.PolicyRule
	for _, r := range roles {
		secretRules = append(secretRules, secretsRules(r.Rules)...)
	}
	for _, r := range clusterRoles {
		if got := secretsRules(r.Rules); len(got) > 0 {
			t.Errorf("ClusterRole %s grants %v on Secrets", r.Name, got)
		}
	}
	if len(secretRules) != 1 || !slices.Equal(secretRules[0].ResourceNames, []string{name}) {
		t.Fatalf("Role rules on Secrets %+v, want one, limited to %s", secretRules, name)
	}
	verbs := slices.Sorted(slices.Values(secretRules[0].Verbs))
	if !slices.Equal(verbs, []string{"get", "update"}) {
		t.Errorf("Role verbs on Secret %s: %v, want get and update", name, verbs)
	}
	client := fake.NewClientset(secret)
	if _, err := SharedCA(context.Background(), client, namespace, name, time.Now()); err != nil {
		t.Fatalf("SharedCA with the shipped Secret: %v", err)
	}
	checkVerbs(t, client, verbs...)
}

func secretsRules(rules []rbacv1.PolicyRule) []rbacv1.PolicyRule {
	var out []rbacv1.PolicyRule
	for _, r := range rules {
		if slices.Contains(r.APIGroups, "") && (slices.Contains(r.Resources, "secrets") || slices.Contains(r.Resources, "*")) {
			out = append(out, r)
		}
	}
	return out
}

// flagValue is the value of --name=value in args, "" when absent.
func flagValue(args []string, name string) string {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
	}
	return ""
}
