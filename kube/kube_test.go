package kube_test

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	k8sfake "k8s.io/client-go/kubernetes/fake"

	"github.com/braid-cni/braid/kube"
)

// TestUninstalling: braidd's exit is an uninstall only when the DaemonSet
// that runs its pod is gone, being deleted, or replaced by another of the
// same name.
func TestUninstalling(t *testing.T) {
	ds := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "braidd", Namespace: "kube-system", UID: "ds-1"}}
	yes := true
	pod := func(owner *metav1.OwnerReference) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "braidd-x", Namespace: "kube-system"}}
		if owner != nil {
			p.OwnerReferences = []metav1.OwnerReference{*owner}
		}
		return p
	}
	ownedBy := func(kind, name string, uid types.UID) *metav1.OwnerReference {
		return &metav1.OwnerReference{APIVersion: "apps/v1", Kind: kind, Name: name, UID: uid, Controller: &yes}
	}
	deleting := ds.DeepCopy()
	deleting.DeletionTimestamp = &metav1.Time{}
	deleting.Finalizers = []string{"foregroundDeletion"}
	tests := []struct {
		name    string
		objects []runtime.Object
		want    bool
		wantErr string
	}{
		{"restart or update", []runtime.Object{ds, pod(ownedBy("DaemonSet", "braidd", "ds-1"))}, false, ""},
		{"DaemonSet deleted", []runtime.Object{pod(ownedBy("DaemonSet", "braidd", "ds-1"))}, true, ""},
		{"DaemonSet being deleted", []runtime.Object{deleting, pod(ownedBy("DaemonSet", "braidd", "ds-1"))}, true, ""},
		{"DaemonSet replaced", []runtime.Object{ds, pod(ownedBy("DaemonSet", "braidd", "ds-0"))}, true, ""},
		{"not run by a DaemonSet", []runtime.Object{pod(nil)}, false, ""},
		{"run by something else", []runtime.Object{pod(ownedBy("ReplicaSet", "braidd", "rs-1"))}, false, ""},
		{"own pod gone", nil, false, "braid's own pod kube-system/braidd-x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &kube.Clients{Core: k8sfake.NewClientset(tt.objects...)}
			got, err := c.Uninstalling(t.Context(), "kube-system", "braidd-x")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("Uninstalling = %v, %v; want an error naming %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("Uninstalling = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}
