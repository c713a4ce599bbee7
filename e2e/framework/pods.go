package framework

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	k8stypes "k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
)

// PodCheck is a state a pod should reach.
type PodCheck struct {
	// Desc completes "wait for pod ns/name to ..." in errors.
	Desc string
	// Met reports whether the pod has reached the state. An error ends the
	// wait at once: the pod can no longer get there.
	Met func(*corev1.Pod) (bool, error)
}

// PodRunning is met once the pod runs; a pod that ended fails it.
func PodRunning() PodCheck {
	return PodPhase(corev1.PodRunning)
}

// PodPhase is met once the pod is in phase. A pod that ended in another
// phase fails it.
func PodPhase(phase corev1.PodPhase) PodCheck {
	return PodCheck{Desc: "be " + string(phase), Met: func(p *corev1.Pod) (bool, error) {
		switch p.Status.Phase {
		case phase:
			return true, nil
		case corev1.PodSucceeded, corev1.PodFailed:
			return false, fmt.Errorf("pod ended in phase %s", p.Status.Phase)
		}
		return false, nil
	}}
}

// PodReady is met once the pod's Ready condition is true.
func PodReady() PodCheck {
	return PodCondition(corev1.PodReady)
}

// PodCondition is met once the pod's condition of type t is true.
func PodCondition(t corev1.PodConditionType) PodCheck {
	return PodCheck{Desc: "have condition " + string(t), Met: func(p *corev1.Pod) (bool, error) {
		if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			return false, fmt.Errorf("pod ended in phase %s", p.Status.Phase)
		}
		for _, c := range p.Status.Conditions {
			if c.Type == t {
				return c.Status == corev1.ConditionTrue, nil
			}
		}
		return false, nil
	}}
}

// WaitForPod polls the pod until check is met, at most timeout, and returns
// it. The error names the pod and the state, and carries the pod's status
// and events.
func WaitForPod(ctx context.Context, client kubernetes.Interface, namespace, name string, timeout time.Duration, check PodCheck) (*corev1.Pod, error) {
	var pod *corev1.Pod
	var lastErr error
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		p, err := client.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			lastErr = err
			return false, nil
		}
		pod = p
		return check.Met(p)
	})
	if err == nil {
		return pod, nil
	}
	if lastErr != nil && pod == nil {
		err = fmt.Errorf("%w (last get: %v)", err, lastErr)
	}
	// The wait's context may be what ended it; the report gets its own.
	reportCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	return pod, fmt.Errorf("wait for pod %s/%s to %s: %w\n%s%s", namespace, name, check.Desc, err,
		describePod(pod), PodEvents(reportCtx, client, namespace, name))
}

// WaitForPodGone waits until the pod no longer exists, at most timeout.
// After a graceful delete that is once the kubelet stopped the pod, CNI DEL
// included; a delete with grace period 0 removes the object at once, so wait
// with Node.WaitPodNetworkGone before checking what DEL cleans up.
func WaitForPodGone(ctx context.Context, client kubernetes.Interface, namespace, name string, timeout time.Duration) error {
	var pod *corev1.Pod
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		p, err := client.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		pod = p
		return false, nil
	})
	if err != nil {
		reportCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		return fmt.Errorf("wait for pod %s/%s to be deleted: %w\n%s%s", namespace, name, err,
			describePod(pod), PodEvents(reportCtx, client, namespace, name))
	}
	return nil
}

// describePod summarizes a pod's status: phase, conditions that are not
// true, and why containers are not running.
func describePod(p *corev1.Pod) string {
	if p == nil {
		return "pod: not found\n"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "pod: phase %s, node %q, IPs %v\n", p.Status.Phase, p.Spec.NodeName, p.Status.PodIPs)
	for _, c := range p.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			fmt.Fprintf(&b, "  condition %s=%s %s %s\n", c.Type, c.Status, c.Reason, c.Message)
		}
	}
	for _, s := range p.Status.ContainerStatuses {
		switch {
		case s.State.Waiting != nil:
			fmt.Fprintf(&b, "  container %s waiting: %s %s\n", s.Name, s.State.Waiting.Reason, s.State.Waiting.Message)
		case s.State.Terminated != nil:
			t := s.State.Terminated
			fmt.Fprintf(&b, "  container %s terminated: exit %d %s %s\n", s.Name, t.ExitCode, t.Reason, t.Message)
		}
	}
	return b.String()
}

// PodEvents formats the pod's events, oldest first, one a line, for error
// messages. It never fails: a failure to list is reported in the text.
func PodEvents(ctx context.Context, client kubernetes.Interface, namespace, name string) string {
	selector := fields.Set{"involvedObject.kind": "Pod", "involvedObject.name": name}.String()
	list, err := client.CoreV1().Events(namespace).List(ctx, metav1.ListOptions{FieldSelector: selector})
	if err != nil {
		return fmt.Sprintf("events: %v\n", err)
	}
	if len(list.Items) == 0 {
		return "events: none\n"
	}
	events := list.Items
	sort.SliceStable(events, func(i, j int) bool { return eventTime(events[i]).Before(eventTime(events[j])) })
	var b strings.Builder
	b.WriteString("events:\n")
	for _, e := range events {
		source := e.Source.Component
		if source == "" {
			source = e.ReportingController
		}
		fmt.Fprintf(&b, "  %s %s %s (%s, x%d): %s\n", eventTime(e).Format(time.TimeOnly), e.Type, e.Reason,
			source, max(e.Count, 1), strings.TrimSpace(e.Message))
	}
	return b.String()
}

func eventTime(e corev1.Event) time.Time {
	switch {
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	}
	return e.CreationTimestamp.Time
}

// SetNetworks patches the pod's networks annotation, as kubectl patch does.
func SetNetworks(ctx context.Context, client kubernetes.Interface, namespace, name, networks string) error {
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{nadv1.NetworkAttachmentAnnot: networks}}})
	if err != nil {
		return err
	}
	if _, err := client.CoreV1().Pods(namespace).Patch(ctx, name, k8stypes.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("patch networks of pod %s/%s: %w", namespace, name, err)
	}
	return nil
}
