package e2e

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	nadclientset "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/client/clientset/versioned"
	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	resourceapi "k8s.io/api/resource/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8stypes "k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/braid-cni/braid/devices"
	"github.com/braid-cni/braid/e2e/framework"
	braidkube "github.com/braid-cni/braid/kube"
	"github.com/braid-cni/braid/status"
	"github.com/braid-cni/braid/webhook"
)

// otherNode is a node none of braid's tokens is for.
const otherNode = "node2"

// nodeAccounts are braid's and braidd's service accounts with the suite's
// tokens, bound to a pod on testNode as a DaemonSet pod's are.
func nodeAccounts() []struct{ name, token string } {
	return []struct{ name, token string }{{"braid", shared.braidToken}, {"braidd", shared.braiddToken}}
}

// TestPodStatusPolicy: deployments/policy.yaml with the real tokens of
// braid and braidd. braid's own network-status write (status.Writer) goes
// through for a pod on the token's node and is refused for a pod on
// another node; through pods/status nothing but that annotation may
// change; a token that names no node may write no pod's status; other
// users are not affected.
func TestPodStatusPolicy(t *testing.T) {
	kube, _ := rbacNamespace(t)
	ns := kube.namespace
	here := kube.pod(t, "here", testNode)
	there := kube.pod(t, "there", otherNode)
	statuses := []nadv1.NetworkStatus{{Name: "cluster", Interface: "eth0", IPs: []string{"10.0.0.5"}, Default: true}}
	for _, acct := range nodeAccounts() {
		t.Run(acct.name, func(t *testing.T) {
			client := tokenClient(t, acct.token)
			w := &status.Writer{Client: client, Component: "braid"}
			if err := w.Record(t.Context(), status.PodRef{Namespace: ns, Name: here.Name}, statuses); err != nil {
				t.Errorf("network-status of a pod on %s: %v", testNode, err)
			} else if got := kube.annotations(t, here.Name)[nadv1.NetworkStatusAnnot]; !strings.Contains(got, "10.0.0.5") {
				t.Errorf("network-status = %q, want the recorded one", got)
			}
			err := w.Record(t.Context(), status.PodRef{Namespace: ns, Name: there.Name}, statuses)
			wantDenied(t, "network-status of a pod on "+otherNode, err, "may write the status of pods on that node only", "is on node "+otherNode)
			if _, ok := kube.annotations(t, there.Name)[nadv1.NetworkStatusAnnot]; ok {
				t.Errorf("pod %s on %s got a network-status", there.Name, otherNode)
			}
			for _, tt := range []struct{ what, patch, want string }{
				{"another annotation", `{"metadata":{"annotations":{"keep":"changed"}}}`, "no annotation but"},
				{"a new annotation", `{"metadata":{"annotations":{"added":"x"}}}`, "no annotation but"},
				{"an annotation removed", `{"metadata":{"annotations":{"keep":null}}}`, "no annotation but"},
				{"network-status and another annotation", `{"metadata":{"annotations":{"k8s.v1.cni.cncf.io/network-status":"[]","keep":"changed"}}}`, "no annotation but"},
				{"a label", `{"metadata":{"labels":{"app":"changed"}}}`, "labels"},
				{"a finalizer", `{"metadata":{"finalizers":["example.com/hold"]}}`, "finalizers"},
				{"a status field", `{"status":{"phase":"Running"}}`, "status fields"},
			} {
				_, err := client.CoreV1().Pods(ns).Patch(t.Context(), here.Name, k8stypes.MergePatchType, []byte(tt.patch), metav1.PatchOptions{}, "status")
				wantDenied(t, tt.what+" through pods/status", err, tt.want)
			}
			if got := kube.annotations(t, here.Name)["keep"]; got != "1" {
				t.Errorf("annotation keep = %q after the refused patches, want 1", got)
			}
		})
	}
	t.Run("token without node", func(t *testing.T) {
		// The framework's static token authenticates as braid's service
		// account, with no node-name: as a hand-made token would.
		w := &status.Writer{Client: tokenClient(t, shared.cp.BraidConfig().BearerToken), Component: "braid"}
		err := w.Record(t.Context(), status.PodRef{Namespace: ns, Name: here.Name}, statuses)
		wantDenied(t, "network-status with a token that names no node", err, "bound to a pod on a node")
	})
	t.Run("other users", func(t *testing.T) {
		// The policy matches braid's accounts only: the kubelet and the
		// admin still write pods/status as before.
		patch := `{"metadata":{"labels":{"app":"admin"}},"status":{"phase":"Running"}}`
		if _, err := kube.CoreV1().Pods(ns).Patch(t.Context(), there.Name, k8stypes.MergePatchType, []byte(patch), metav1.PatchOptions{}, "status"); err != nil {
			t.Errorf("admin patch of pods/status: %v", err)
		}
	})
}

// TestClaimStatusPolicy: braid's own write of network data
// (devices.Claims.RecordDeviceStatus) into a ResourceClaim allocated on the
// token's node goes through; into one allocated on another node it is
// refused; braid may not unreserve or deallocate it. (A changed
// allocation the API server's validation refuses: it is immutable.)
//
// Who refuses depends on the server: up to 1.35 only
// deployments/policy.yaml does; from 1.36 the server's own authorization
// of resourceclaims/driver (associated-node only, in braid's roles) and
// resourceclaims/binding (none in braid's roles) refuses first, and the
// policy stays as the second line. Either refusal passes; a write that
// goes through fails.
func TestClaimStatusPolicy(t *testing.T) {
	kube, _ := rbacNamespace(t)
	pod := kube.pod(t, "claimer", testNode)
	const driver = "policy.braid.test"
	for _, acct := range nodeAccounts() {
		t.Run(acct.name, func(t *testing.T) {
			client := tokenClient(t, acct.token)
			claims := &devices.Claims{Client: client}
			st := devices.DeviceStatus{Network: &devices.NetworkData{InterfaceName: "net1", IPs: []string{"10.58.0.10/24"}}, Ready: true, Reason: devices.ReasonConfigured, Message: "interface net1"}
			for _, node := range []string{testNode, otherNode} {
				name := acct.name + "-on-" + node
				kube.allocatedClaim(t, name, driver, node, pod)
				err := claims.RecordDeviceStatus(t.Context(), devices.ClaimDevice{Namespace: kube.namespace, Name: name, Driver: driver, Pool: node, Device: "vf0"}, st)
				if node == testNode {
					// A server whose DRAResourceClaimDeviceStatus is off
					// drops the data, but admitted the write.
					if err != nil && !errors.Is(err, devices.ErrNetworkDataUnsupported) {
						t.Errorf("network data of a claim allocated on %s: %v", node, err)
					}
					continue
				}
				wantRefused(t, "network data of a claim allocated on "+node, err, "allocated for other nodes", `resourceclaims/driver", verb="[arbitrary-node:update]"`)
			}
			claim, err := client.ResourceV1().ResourceClaims(kube.namespace).Get(t.Context(), acct.name+"-on-"+testNode, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			claim.Status.ReservedFor = nil
			_, err = client.ResourceV1().ResourceClaims(kube.namespace).UpdateStatus(t.Context(), claim, metav1.UpdateOptions{})
			wantRefused(t, "reservedFor cleared", err, "reserved for", `resourceclaims/binding"`)
			claim.Status.Allocation = nil // deallocated, which validation allows once unreserved
			_, err = client.ResourceV1().ResourceClaims(kube.namespace).UpdateStatus(t.Context(), claim, metav1.UpdateOptions{})
			wantRefused(t, "claim deallocated", err, "allocation", `resourceclaims/binding"`)
		})
	}
}

// TestRoles: the roles of deployments/ hold what the code calls and no
// more. An account with only the thin plugin's ClusterRole does braid's
// reads and its event, and may not list or watch NADs nor list pods.
// braid-webhook, with webhook.yaml's Role, fills the shipped CA Secret
// through webhook.SharedCA but may create no Secret, read no other, and
// without the shipped Secret fails saying so.
func TestRoles(t *testing.T) {
	kube, nads := rbacNamespace(t)
	ns := kube.namespace
	pod := kube.pod(t, "reader", testNode)
	nad := &nadv1.NetworkAttachmentDefinition{ObjectMeta: metav1.ObjectMeta{Name: "blue", Namespace: ns}, Spec: nadv1.NetworkAttachmentDefinitionSpec{Config: `{"cniVersion":"1.0.0","name":"blue","type":"bridge"}`}}
	if _, err := nads.K8sCniCncfIoV1().NetworkAttachmentDefinitions(ns).Create(t.Context(), nad, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	t.Run("thin", func(t *testing.T) {
		acct := newAccount(t, kube, fmt.Sprintf("braid-thin-%d", seq.Add(1)))
		acct.bind("braid")
		cfg := shared.cp.TokenConfig(acct.token)
		clients, err := braidkube.FromConfig(cfg, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := clients.GetPod(t.Context(), ns, pod.Name); err != nil {
			t.Errorf("get pod: %v", err)
		}
		if _, err := clients.GetNAD(t.Context(), ns, nad.Name); err != nil {
			t.Errorf("get NAD: %v", err)
		}
		w := &status.Writer{Client: clients.Core, Component: "braid", Node: testNode}
		if err := w.Event(t.Context(), status.PodRef{Namespace: ns, Name: pod.Name, UID: pod.UID}, corev1.EventTypeNormal, "AddedInterface", "net1"); err != nil {
			t.Errorf("create event: %v", err)
		}
		nadsOf := clients.NADs.K8sCniCncfIoV1().NetworkAttachmentDefinitions(ns)
		for what, call := range map[string]func() error{
			"list NADs":  func() error { _, err := nadsOf.List(t.Context(), metav1.ListOptions{}); return err },
			"watch NADs": func() error { _, err := nadsOf.Watch(t.Context(), metav1.ListOptions{}); return err },
			"list pods": func() error {
				_, err := clients.Core.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{})
				return err
			},
		} {
			if err := call(); !apierrors.IsForbidden(err) {
				t.Errorf("%s with the thin role: %v, want Forbidden", what, err)
			}
		}
	})

	t.Run("webhook", func(t *testing.T) {
		admin := shared.cp.AdminConfig()
		const file = "deployments/webhook.yaml"
		rbac := []string{"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "Secret"}
		if err := framework.EnsureObjectsOf(t.Context(), admin, file, rbac...); err != nil {
			t.Fatal(err)
		}
		hour := int64(3600)
		tr, err := kube.CoreV1().ServiceAccounts("kube-system").CreateToken(t.Context(), "braid-webhook",
			&authv1.TokenRequest{Spec: authv1.TokenRequestSpec{ExpirationSeconds: &hour}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		client := tokenClient(t, tr.Status.Token)
		secrets := client.CoreV1().Secrets("kube-system")
		first, err := webhook.SharedCA(t.Context(), client, "kube-system", "braid-webhook-ca", time.Now())
		if err != nil {
			t.Fatalf("fill the shipped CA Secret: %v", err)
		}
		if again, err := webhook.SharedCA(t.Context(), client, "kube-system", "braid-webhook-ca", time.Now()); err != nil || !again.Cert.Equal(first.Cert) {
			t.Errorf("second replica: %v, same CA %v", err, err == nil && again.Cert.Equal(first.Cert))
		}
		other := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "braid-webhook-other", Namespace: "kube-system"}}
		if _, err := kube.CoreV1().Secrets("kube-system").Create(t.Context(), other, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
		for what, call := range map[string]func() error{
			"create a Secret in kube-system": func() error {
				_, err := secrets.Create(t.Context(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "stolen", Namespace: "kube-system"}}, metav1.CreateOptions{})
				return err
			},
			"create a Secret elsewhere": func() error {
				_, err := client.CoreV1().Secrets(ns).Create(t.Context(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "stolen", Namespace: ns}}, metav1.CreateOptions{})
				return err
			},
			"get another Secret": func() error { _, err := secrets.Get(t.Context(), other.Name, metav1.GetOptions{}); return err },
			"list Secrets":       func() error { _, err := secrets.List(t.Context(), metav1.ListOptions{}); return err },
		} {
			if err := call(); !apierrors.IsForbidden(err) {
				t.Errorf("%s as braid-webhook: %v, want Forbidden", what, err)
			}
		}
		// Without the shipped Secret: a clear error, and still none
		// created. The Secret comes back for whoever runs next.
		if err := kube.CoreV1().Secrets("kube-system").Delete(t.Context(), "braid-webhook-ca", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := framework.EnsureObjectsOf(context.Background(), admin, file, "Secret"); err != nil {
				t.Error(err)
			}
		}()
		_, err = webhook.SharedCA(t.Context(), client, "kube-system", "braid-webhook-ca", time.Now())
		if !errors.Is(err, webhook.ErrNoCASecret) {
			t.Errorf("without the Secret: %v, want ErrNoCASecret", err)
		}
		if _, err := kube.CoreV1().Secrets("kube-system").Get(t.Context(), "braid-webhook-ca", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("the CA Secret after the failed start: %v, want not found", err)
		}
	})
}

// rbacKube is the admin's client with a namespace of the test's own.
type rbacKube struct {
	kubernetes.Interface
	namespace string
}

// rbacNamespace makes a namespace for the test, emptied at its end.
func rbacNamespace(t *testing.T) (*rbacKube, nadclientset.Interface) {
	t.Helper()
	kube, nads, ns := ownNamespace(t, "e2e-rbac")
	return &rbacKube{Interface: kube, namespace: ns}, nads
}

// pod creates a pod bound to node, with an annotation and a label that
// braid must leave alone.
func (k *rbacKube) pod(t *testing.T, name, node string) *corev1.Pod {
	t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: k.namespace, Annotations: map[string]string{"keep": "1"}, Labels: map[string]string{"app": "x"}},
		Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Image: "pause"}}},
	}
	got, err := k.CoreV1().Pods(k.namespace).Create(t.Context(), pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create pod %s: %v", name, err)
	}
	return got
}

func (k *rbacKube) annotations(t *testing.T, pod string) map[string]string {
	t.Helper()
	got, err := k.CoreV1().Pods(k.namespace).Get(t.Context(), pod, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get pod %s: %v", pod, err)
	}
	return got.Annotations
}

// allocatedClaim creates a ResourceClaim and allocates it device vf0 of
// driver in pool node, pinned to that node by name as the scheduler does
// for a device of one node, and reserved for pod.
func (k *rbacKube) allocatedClaim(t *testing.T, name, driver, node string, pod *corev1.Pod) {
	t.Helper()
	claims := k.ResourceV1().ResourceClaims(k.namespace)
	claim := &resourceapi.ResourceClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: k.namespace},
		Spec: resourceapi.ResourceClaimSpec{Devices: resourceapi.DeviceClaim{Requests: []resourceapi.DeviceRequest{{
			Name:    "vf",
			Exactly: &resourceapi.ExactDeviceRequest{DeviceClassName: "braid-net", AllocationMode: resourceapi.DeviceAllocationModeExactCount, Count: 1},
		}}}},
	}
	claim, err := claims.Create(t.Context(), claim, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create ResourceClaim %s: %v", name, err)
	}
	t.Cleanup(func() { _ = claims.Delete(context.Background(), name, metav1.DeleteOptions{}) })
	claim.Status.Allocation = &resourceapi.AllocationResult{
		Devices:      resourceapi.DeviceAllocationResult{Results: []resourceapi.DeviceRequestAllocationResult{{Request: "vf", Driver: driver, Pool: node, Device: "vf0"}}},
		NodeSelector: onNode(node),
	}
	claim.Status.ReservedFor = []resourceapi.ResourceClaimConsumerReference{{Resource: "pods", Name: pod.Name, UID: pod.UID}}
	if _, err := claims.UpdateStatus(t.Context(), claim, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("allocate ResourceClaim %s: %v", name, err)
	}
}

// onNode is the node selector the scheduler writes into the allocation of a
// claim whose devices are in a slice of node: one term, one field. The API
// server of Kubernetes 1.36+ reads the node from exactly this form when it
// authorizes a write to status.devices as "associated-node".
func onNode(node string) *corev1.NodeSelector {
	return &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
		MatchFields: []corev1.NodeSelectorRequirement{{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{node}}},
	}}}
}

// wantRefused passes when err is deployments/policy.yaml's refusal (403
// saying policy) or the API server's own authorization of a status field
// (Kubernetes 1.36+: 422, a field Forbidden saying server), and fails on
// anything else, a write that went through first.
func wantRefused(t *testing.T, what string, err error, policy, server string) {
	t.Helper()
	if apierrors.IsInvalid(err) && strings.Contains(err.Error(), server) {
		return
	}
	wantDenied(t, what, err, policy)
}

// tokenClient is a client of the suite's API server that authenticates
// with token.
func tokenClient(t *testing.T, token string) kubernetes.Interface {
	t.Helper()
	client, err := kubernetes.NewForConfig(shared.cp.TokenConfig(token))
	if err != nil {
		t.Fatal(err)
	}
	return client
}

// wantDenied fails unless err is the API server's refusal (403) and its
// message holds every one of want.
func wantDenied(t *testing.T, what string, err error, want ...string) {
	t.Helper()
	if !apierrors.IsForbidden(err) {
		t.Errorf("%s: %v, want Forbidden", what, err)
		return
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%s: refused with %q, want it to say %q", what, err, w)
		}
	}
}
