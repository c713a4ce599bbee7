package kube

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The cache keeps what the plan needs of a pod, DRA claims included, and
// drops the rest.
func TestSlimPodKeepsClaims(t *testing.T) {
	name := "p-net-x1"
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "u", Annotations: map[string]string{"a": "b"}},
		Spec: corev1.PodSpec{
			NodeName:       "n1",
			ResourceClaims: []corev1.PodResourceClaim{{Name: "net", ResourceClaimTemplateName: &name}},
			Containers:     []corev1.Container{{Name: "c", Image: "big"}},
		},
		Status: corev1.PodStatus{
			Phase:                 corev1.PodRunning,
			ResourceClaimStatuses: []corev1.PodResourceClaimStatus{{Name: "net", ResourceClaimName: &name}},
			ContainerStatuses:     []corev1.ContainerStatus{{Name: "c"}},
		},
	}
	obj, err := slimPod(pod)
	if err != nil {
		t.Fatal(err)
	}
	got := obj.(*corev1.Pod)
	if !reflect.DeepEqual(got.Spec.ResourceClaims, pod.Spec.ResourceClaims) || !reflect.DeepEqual(got.Status.ResourceClaimStatuses, pod.Status.ResourceClaimStatuses) {
		t.Errorf("claims lost: spec %+v status %+v", got.Spec.ResourceClaims, got.Status.ResourceClaimStatuses)
	}
	if len(got.Spec.Containers) != 0 || len(got.Status.ContainerStatuses) != 0 || got.Spec.NodeName != "n1" || got.Annotations["a"] != "b" {
		t.Errorf("slim pod = %+v", got)
	}
}
