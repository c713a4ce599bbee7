package status

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8stypes "k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
)

// PodRef names a pod: the one a status or an event is for, and the one a
// plan was built for (journaled with the plan, hence the JSON names). Empty
// when the runtime sent no K8S_POD_* args.
type PodRef struct {
	Namespace string       `json:"namespace,omitempty"`
	Name      string       `json:"name,omitempty"`
	UID       k8stypes.UID `json:"uid,omitempty"`
}

// Writer records network-status and events through the API server.
type Writer struct {
	Client    kubernetes.Interface
	Component string // event source, e.g. "braid"
	Node      string
	// Events, when set, takes the events: client-go's recorder queues,
	// aggregates and sends them in the background, off the CNI call's
	// latency (the daemon). nil: each event is created before Event
	// returns (the thin plugin, which exits right after).
	Events record.EventRecorder
}

// Record PATCHes pods/status with the network-status annotation: one request,
// a merge patch of that one key, so other annotations are not raced. When
// pod.UID is set the patch carries it too: the API server then refuses to
// write to a pod of that name with another UID (one recreated under the same
// name, as a StatefulSet does), since a pod's UID cannot change, so a new
// pod never shows the addresses of the sandbox that was its predecessor's.
// PodGone tells that refusal.
func (w *Writer) Record(ctx context.Context, pod PodRef, statuses []nadv1.NetworkStatus) error {
	value, err := Marshal(statuses)
	if err != nil {
		return err
	}
	meta := map[string]any{
		"annotations": map[string]string{nadv1.NetworkStatusAnnot: value},
	}
	if pod.UID != "" {
		meta["uid"] = pod.UID
	}
	patch, err := json.Marshal(map[string]any{"metadata": meta})
	if err != nil {
		return fmt.Errorf("encode network-status patch for pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	_, err = w.Client.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, k8stypes.MergePatchType, patch, metav1.PatchOptions{}, "status")
	if err != nil {
		return fmt.Errorf("patch network-status of pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	return nil
}

// uidPrecondition is in the message of the Conflict the API server returns
// when an update's UID precondition fails; the error has no reason or cause
// of its own to tell it from other conflicts.
const uidPrecondition = "Precondition failed: UID in precondition"

// PodGone reports whether err from Record says that the pod the status was
// for is gone: deleted (NotFound) or replaced by a pod of the same name with
// another UID. There is nothing left to record on; callers treat it as
// done, not as a failure to retry.
//
// The API server refuses Record's patch for a replaced pod as Invalid, with
// the cause "metadata.uid: field is immutable" (the patched object would
// change the stored pod's UID); an update carrying the UID as a
// precondition is refused with a Conflict instead. Both count.
func PodGone(err error) bool {
	if apierrors.IsNotFound(err) {
		return true
	}
	var se apierrors.APIStatus
	if !errors.As(err, &se) {
		return false
	}
	st := se.Status()
	switch st.Reason {
	case metav1.StatusReasonInvalid:
		return st.Details != nil && slices.ContainsFunc(st.Details.Causes, func(c metav1.StatusCause) bool {
			return c.Field == "metadata.uid"
		})
	case metav1.StatusReasonConflict:
		return strings.Contains(st.Message, uidPrecondition)
	}
	return false
}

// Event emits an event on the pod. reason is CamelCase, eventType Normal or Warning.
func (w *Writer) Event(ctx context.Context, pod PodRef, eventType, reason, message string) error {
	ref := corev1.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID}
	if w.Events != nil {
		w.Events.Event(&ref, eventType, reason, message)
		return nil
	}
	now := metav1.NewTime(time.Now())
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: pod.Name + ".",
			Namespace:    pod.Namespace,
		},
		InvolvedObject:      ref,
		Reason:              reason,
		Message:             message,
		Type:                eventType,
		FirstTimestamp:      now,
		LastTimestamp:       now,
		Count:               1,
		Source:              corev1.EventSource{Component: w.Component, Host: w.Node},
		ReportingController: w.Component,
		ReportingInstance:   w.Component + "-" + w.Node,
	}
	if _, err := w.Client.CoreV1().Events(pod.Namespace).Create(ctx, ev, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create %s event on pod %s/%s: %w", reason, pod.Namespace, pod.Name, err)
	}
	return nil
}
