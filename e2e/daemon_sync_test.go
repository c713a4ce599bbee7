package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	authv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// TestDaemonCachesNotSynced: a braidd whose service account may get NADs
// but not list them never syncs its caches. Through the shim, ADD is
// refused with code 11 and attaches nothing, /readyz is not 200, and DEL of
// a container attached earlier still works, from the journal. Once the
// account is bound to braidd's ClusterRole, braidd becomes ready by itself
// and ADD succeeds.
func TestDaemonCachesNotSynced(t *testing.T) {
	// The node's own, synced daemon attaches the first pod; the journal
	// then holds its attachments.
	n, first := attached(t, thick, "1.0.0")
	n.daemon.stop()

	acct := newAccount(t, n.kube, fmt.Sprintf("braidd-unsynced-%d", n.id))
	acct.bind(acct.roleWithout("braidd", "k8s.cni.cncf.io", "network-attachment-definitions", "list", "watch"))
	d := launchDaemon(t, daemonConfig(n.daemonSettings(), map[string]any{
		"kubeconfig": acct.kubeconfig,
		"socketDir":  n.daemon.SocketDir, // where the node's shim forwards to
	}), false)
	n.daemon = &daemon{Braidd: d, t: t}

	// Not merely not synced yet: the pod cache has listed, and the API
	// server refused to list NADs.
	eventually(t, 30*time.Second, "braidd lists pods and is refused NADs", func() error {
		if v, _ := metric(t, d, `braid_api_requests_total{code="403",method="GET"}`); v < 1 {
			return errors.New("no request refused with 403 yet")
		}
		if v := mustMetric(t, d, "braid_cache_pods"); v < 1 {
			return fmt.Errorf("braid_cache_pods = %v, want the first pod", v)
		}
		return nil
	})
	if code, body, err := d.Probe(t.Context(), "/readyz"); err != nil || code == http.StatusOK || !strings.Contains(body, "network-attachment-definitions") {
		t.Errorf("/readyz with the NAD cache unsynced = %d %q, %v; want not 200, naming the NAD cache", code, body, err)
	}

	second := n.sandbox(n.createPod("q", map[string]string{nadv1.NetworkAttachmentAnnot: "blue"}))
	_, err := second.add()
	if cniCode(err) != types.ErrTryAgainLater || !strings.Contains(err.Error(), "caches not synced yet: network-attachment-definitions") {
		t.Fatalf("ADD with the caches unsynced = %v, want code 11 naming the NAD cache as not synced", err)
	}
	t.Logf("ADD refused: %v", err)
	if got := second.links(); len(got) != 0 {
		t.Errorf("refused ADD left %v in the pod", keys(got))
	}
	if l := n.leases("cluster"); len(l) != 1 {
		t.Errorf("cluster network leases %v after the refused ADD, want the first pod's only", l)
	}
	if got := n.journal(); !slices.Equal(got, []string{first.containerID}) {
		t.Errorf("journal = %v after the refused ADD, want [%s]", got, first.containerID)
	}

	first.mustDel()
	released(t, n, first)
	// The unsynced daemon answered both: the shim did not fall back to
	// deleting on its own.
	wantMetric(t, d, `braid_requests_total{result="error",verb="ADD"}`, 1)
	wantMetric(t, d, `braid_requests_total{result="ok",verb="DEL"}`, 1)

	acct.bind("braidd")
	waited := eventually(t, 90*time.Second, "braidd ready once it may list NADs", func() error {
		code, body, err := d.Probe(t.Context(), "/readyz")
		if err == nil && code != http.StatusOK {
			err = fmt.Errorf("/readyz: %d %s", code, strings.TrimSpace(body))
		}
		return err
	})
	t.Logf("braidd ready %s after the binding was created", waited.Round(time.Millisecond))

	second.mustAdd()
	attachedBlue(t, n, second)
	wantMetric(t, d, `braid_requests_total{result="ok",verb="ADD"}`, 1)
	second.mustDel()
	released(t, n, second)
}

// account is a kube-system service account with a token of its own: a
// braidd identity whose rights the test grants. Cleanup deletes the
// account and the ClusterRoles and ClusterRoleBindings made for it.
type account struct {
	t          *testing.T
	kube       kubernetes.Interface // the admin's
	name       string
	token      string // not bound to a pod: it names no node
	kubeconfig string // with token
}

func newAccount(t *testing.T, kube kubernetes.Interface, name string) *account {
	t.Helper()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: metav1.NamespaceSystem}}
	if _, err := kube.CoreV1().ServiceAccounts(sa.Namespace).Create(t.Context(), sa, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create service account %s/%s: %v", sa.Namespace, name, err)
	}
	a := &account{t: t, kube: kube, name: name}
	a.cleanup("service account", func(ctx context.Context) error {
		return kube.CoreV1().ServiceAccounts(sa.Namespace).Delete(ctx, name, metav1.DeleteOptions{})
	})
	hour := int64(3600)
	tr, err := kube.CoreV1().ServiceAccounts(sa.Namespace).CreateToken(t.Context(), name,
		&authv1.TokenRequest{Spec: authv1.TokenRequestSpec{ExpirationSeconds: &hour}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("request a token for %s/%s: %v", sa.Namespace, name, err)
	}
	a.token = tr.Status.Token
	cfg := shared.cp.BraidConfig()
	a.kubeconfig = writeKubeconfig(t, t.TempDir(), cfg.Host, cfg.CAData, a.token)
	return a
}

// roleWithout creates a copy of the ClusterRole base without verbs on
// group/resource, and returns its name.
func (a *account) roleWithout(base, group, resource string, verbs ...string) string {
	a.t.Helper()
	roles := a.kube.RbacV1().ClusterRoles()
	orig, err := roles.Get(a.t.Context(), base, metav1.GetOptions{})
	if err != nil {
		a.t.Fatalf("get ClusterRole %s: %v", base, err)
	}
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: a.name + "-" + base}}
	removed := 0
	for _, r := range orig.Rules {
		r = *r.DeepCopy()
		if slices.Contains(r.APIGroups, group) && slices.Contains(r.Resources, resource) {
			before := len(r.Verbs)
			r.Verbs = slices.DeleteFunc(r.Verbs, func(v string) bool { return slices.Contains(verbs, v) })
			removed += before - len(r.Verbs)
		}
		role.Rules = append(role.Rules, r)
	}
	if removed != len(verbs) {
		a.t.Fatalf("ClusterRole %s grants %d of the verbs %v on %s.%s, want all", base, removed, verbs, resource, group)
	}
	if _, err := roles.Create(a.t.Context(), role, metav1.CreateOptions{}); err != nil {
		a.t.Fatalf("create ClusterRole %s: %v", role.Name, err)
	}
	a.cleanup("ClusterRole "+role.Name, func(ctx context.Context) error {
		return roles.Delete(ctx, role.Name, metav1.DeleteOptions{})
	})
	return role.Name
}

// bind binds the ClusterRole role to the account.
func (a *account) bind(role string) {
	a.t.Helper()
	b := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: a.name + "-" + role},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: a.name, Namespace: metav1.NamespaceSystem}},
	}
	bindings := a.kube.RbacV1().ClusterRoleBindings()
	if _, err := bindings.Create(a.t.Context(), b, metav1.CreateOptions{}); err != nil {
		a.t.Fatalf("create ClusterRoleBinding %s: %v", b.Name, err)
	}
	a.cleanup("ClusterRoleBinding "+b.Name, func(ctx context.Context) error {
		return bindings.Delete(ctx, b.Name, metav1.DeleteOptions{})
	})
	a.waitBound(role)
}

// waitBound waits until the API server's authorizer sees the binding: it
// grants the first verb of the role's first rule that names no resource
// names. The RBAC authorizer reads bindings through its own cache, so a
// request right after the binding was created can still be forbidden.
func (a *account) waitBound(role string) {
	a.t.Helper()
	r, err := a.kube.RbacV1().ClusterRoles().Get(a.t.Context(), role, metav1.GetOptions{})
	if err != nil {
		a.t.Fatalf("get ClusterRole %s: %v", role, err)
	}
	i := slices.IndexFunc(r.Rules, func(rule rbacv1.PolicyRule) bool {
		return len(rule.Verbs) > 0 && len(rule.Resources) > 0 && len(rule.APIGroups) > 0 && len(rule.ResourceNames) == 0
	})
	if i < 0 {
		a.t.Fatalf("ClusterRole %s has no rule to wait for", role)
	}
	rule := r.Rules[i]
	review := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User:   "system:serviceaccount:" + metav1.NamespaceSystem + ":" + a.name,
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + metav1.NamespaceSystem, "system:authenticated"},
		ResourceAttributes: &authorizationv1.ResourceAttributes{
			Verb: rule.Verbs[0], Group: rule.APIGroups[0], Resource: rule.Resources[0], Namespace: "default",
		},
	}}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		got, err := a.kube.AuthorizationV1().SubjectAccessReviews().Create(a.t.Context(), review, metav1.CreateOptions{})
		if err == nil && got.Status.Allowed {
			return
		}
		if time.Now().After(deadline) {
			a.t.Fatalf("ClusterRole %s bound to %s: not in effect after 30s (%v)", role, a.name, err)
		}
	}
}

// cleanup deletes an object at the end of the test; one already gone is
// fine.
func (a *account) cleanup(what string, del func(context.Context) error) {
	a.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := del(ctx); err != nil && !apierrors.IsNotFound(err) {
			a.t.Errorf("cleanup: delete %s: %v", what, err)
		}
	})
}
