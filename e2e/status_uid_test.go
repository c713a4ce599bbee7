package e2e

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8stypes "k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/braid-cni/braid/e2e/framework"
	"github.com/braid-cni/braid/kube"
	"github.com/braid-cni/braid/status"
)

// TestStatusForRecreatedPod: a pod deleted and recreated under the same
// name (a StatefulSet's) gets only its own network-status. The status of
// the old pod's sandbox, written late (an ADD that was still running, the
// daemon's queue), carries the old UID and the real API server refuses it
// (a pod's UID is immutable);
// braid counts that as the pod gone, and the queue drops it without
// touching the new pod, whichever it writes first.
func TestStatusForRecreatedPod(t *testing.T) {
	n := newNode(t, thin, "1.0.0")
	old := n.createPod("web", nil)
	oldSb := n.sandbox(old)
	oldSb.mustAdd()
	oldStatus := networkStatus(t, n.getPod("web"))

	recreated := n.recreatePod(old)
	if _, ok := recreated.Annotations[nadv1.NetworkStatusAnnot]; ok {
		t.Fatalf("recreated pod starts with a network-status: %v", recreated.Annotations)
	}

	// braid's own least-privilege credentials, as ADD and braidd use them.
	clients, err := kube.FromKubeconfig(shared.kubeconfig, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	w := &status.Writer{Client: clients.Core, Component: "braid", Node: "node1"}
	oldRef := status.PodRef{Namespace: n.namespace, Name: "web", UID: old.UID}
	err = w.Record(t.Context(), oldRef, oldStatus)
	if !apierrors.IsInvalid(err) || !status.PodGone(err) {
		t.Fatalf("old sandbox's status on the recreated pod: %v; want the API server's refusal (metadata.uid is immutable), which PodGone counts as the pod gone", err)
	}
	if ann := n.getPod("web").Annotations; ann[nadv1.NetworkStatusAnnot] != "" {
		t.Errorf("recreated pod got the old sandbox's network-status: %s", ann[nadv1.NetworkStatusAnnot])
	}

	// The new sandbox's ADD writes its own status, under the new UID.
	newSb := n.sandbox(recreated)
	newSb.containerID += "-again" // sandbox names the container after the pod
	newSb.mustAdd()
	newStatus := networkStatus(t, n.getPod("web"))
	checkStatus(t, newSb, newStatus, []string{"cluster"}, []string{"eth0"})
	if slices.Equal(newStatus[0].IPs, oldStatus[0].IPs) {
		t.Fatalf("old and new sandbox share IPs %v; the test cannot tell their statuses apart", newStatus[0].IPs)
	}

	// braidd's queue: the old sandbox's status queued after the new one's
	// neither replaces it (the queue keys pods by UID) nor is written:
	// refused, it is dropped. The annotation is emptied first so that only
	// the queue can put the new status back.
	emptied := []byte(`{"metadata":{"annotations":{"` + nadv1.NetworkStatusAnnot + `":"[]"}}}`)
	if _, err := n.kube.CoreV1().Pods(n.namespace).Patch(t.Context(), "web", k8stypes.MergePatchType, emptied, metav1.PatchOptions{}, "status"); err != nil {
		t.Fatal(err)
	}
	logs := &framework.LogBuffer{}
	q := status.NewQueue(w, slog.New(slog.NewTextHandler(logs, nil)))
	ctx, stop := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		q.Run(ctx, 2, 5*time.Second)
	}()
	defer func() {
		stop()
		<-done
	}()
	_ = q.Record(t.Context(), status.PodRef{Namespace: n.namespace, Name: "web", UID: recreated.UID}, newStatus)
	_ = q.Record(t.Context(), oldRef, oldStatus)
	err = wait.PollUntilContextTimeout(t.Context(), 10*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		return q.Pending() == 0, nil
	})
	if err != nil {
		t.Fatalf("queue still holds %d statuses: %v\n%s", q.Pending(), err, logs)
	}
	if got := networkStatus(t, n.getPod("web")); len(got) != 1 || !slices.Equal(got[0].IPs, newStatus[0].IPs) {
		t.Errorf("network-status %+v after the queue ran, want the new sandbox's IPs %v (old %v)", got, newStatus[0].IPs, oldStatus[0].IPs)
	}
	if !strings.Contains(logs.String(), "pod deleted or recreated before its network-status was written") || !strings.Contains(logs.String(), string(old.UID)) {
		t.Errorf("queue log does not say it dropped the old UID's status:\n%s", logs)
	}

	oldSb.mustDel()
	newSb.mustDel()
}

// recreatePod deletes pod at once (no kubelet runs it, so nothing would
// finish a graceful deletion), waits until it is gone and creates a pod of
// the same name, which gets another UID.
func (n *node) recreatePod(pod *corev1.Pod) *corev1.Pod {
	n.t.Helper()
	pods := n.kube.CoreV1().Pods(pod.Namespace)
	now := int64(0)
	if err := pods.Delete(n.t.Context(), pod.Name, metav1.DeleteOptions{GracePeriodSeconds: &now}); err != nil {
		n.t.Fatalf("delete pod %s: %v", pod.Name, err)
	}
	err := wait.PollUntilContextTimeout(n.t.Context(), 10*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := pods.Get(ctx, pod.Name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	if err != nil {
		n.t.Fatalf("pod %s not gone: %v", pod.Name, err)
	}
	again := n.createPod(pod.Name, pod.Annotations)
	if again.UID == pod.UID {
		n.t.Fatalf("recreated pod %s kept UID %s", pod.Name, pod.UID)
	}
	return again
}
