package ctl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8stypes "k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"

	"github.com/braid-cni/braid/annotations"
	"github.com/braid-cni/braid/attacher"
	"github.com/braid-cni/braid/plan"
)

// WithNetwork returns the networks annotation value current with network
// ("[namespace/]name[@ifname]") added at its end, in current's own form:
// the short form stays short, a JSON list gets one more object.
func WithNetwork(current, namespace, network string) (string, error) {
	add, err := annotations.ParseNetworks(network, namespace)
	if err == nil && len(add) == 1 {
		err = annotations.Validate(add, annotations.PodIfName)
	}
	if err != nil || len(add) != 1 {
		return "", fmt.Errorf("network %q: want [namespace/]name[@ifname]: %v", network, err)
	}
	sels, err := annotations.ParseNetworks(current, namespace)
	if err != nil {
		return "", err
	}
	if !isJSONList(current) {
		return shortForm(append(sels, add[0])), nil
	}
	var list []json.RawMessage
	if err := json.Unmarshal([]byte(current), &list); err != nil {
		return "", fmt.Errorf("networks annotation: %w", err)
	}
	el := map[string]string{"name": add[0].Name, "namespace": add[0].Namespace}
	if add[0].InterfaceRequest != "" {
		el["interface"] = add[0].InterfaceRequest
	}
	data, err := json.Marshal(el)
	if err != nil {
		return "", err
	}
	return marshalList(append(list, data))
}

// WithoutInterface returns the networks annotation value current without
// the selection that gave the pod ifName, as braid matches them
// (plan.Match against network-status).
func WithoutInterface(current, namespace string, statuses []nadv1.NetworkStatus, ifName string) (string, error) {
	sels, err := annotations.ParseNetworks(current, namespace)
	if err != nil {
		return "", err
	}
	have := secondaries(statuses)
	at := slices.IndexFunc(have, func(h plan.Interface) bool { return h.IfName == ifName })
	if at < 0 {
		return "", fmt.Errorf("interface %s is not among the pod's secondary interfaces in network-status", ifName)
	}
	i := slices.Index(plan.Match(sels, have), at)
	if i < 0 {
		return "", fmt.Errorf("interface %s (network %s) comes from no selection of the networks annotation (braid's defaultNetworks?)", ifName, have[at].Network)
	}
	if !isJSONList(current) {
		return shortForm(slices.Delete(sels, i, i+1)), nil
	}
	var list []json.RawMessage
	if err := json.Unmarshal([]byte(current), &list); err != nil || len(list) != len(sels) {
		return "", fmt.Errorf("networks annotation: %d elements: %v", len(list), err)
	}
	if len(list) == 1 {
		return "", nil
	}
	return marshalList(slices.Delete(list, i, i+1))
}

// secondaries are network-status's interfaces after the cluster network's.
func secondaries(statuses []nadv1.NetworkStatus) []plan.Interface {
	var have []plan.Interface
	for i, s := range statuses {
		if i > 0 {
			have = append(have, plan.Interface{Network: s.Name, IfName: s.Interface})
		}
	}
	return have
}

func isJSONList(v string) bool { return strings.HasPrefix(strings.TrimSpace(v), "[") }

func shortForm(sels []*annotations.Selection) string {
	parts := make([]string, len(sels))
	for i, s := range sels {
		parts[i] = s.String()
	}
	return strings.Join(parts, ", ")
}

func marshalList(list []json.RawMessage) (string, error) {
	data, err := json.Marshal(list)
	if err != nil {
		return "", fmt.Errorf("encode networks annotation: %w", err)
	}
	return string(data), nil
}

// changeNetworks patches the pod's networks annotation with what edit
// makes of it, then waits until network-status says done or a Warning
// event newer than the patch says why not.
func changeNetworks(ctx context.Context, client kubernetes.Interface, namespace, name string, edit func(current string, statuses []nadv1.NetworkStatus) (string, error), done func([]nadv1.NetworkStatus) bool) ([]nadv1.NetworkStatus, error) {
	pods := client.CoreV1().Pods(namespace)
	// braid's Warnings on the pod before the patch: only a new one, or one
	// that came again, answers it (no clock is compared).
	seen, err := braidWarnings(ctx, client, namespace, name)
	if err != nil {
		return nil, err
	}
	// The resourceVersion makes the patch fail rather than overwrite a
	// change made since the pod was read; braid's own status writes are
	// such changes, so a conflict reads the pod again and edits anew.
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		pod, err := pods.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("get pod %s/%s: %w", namespace, name, err)
		}
		statuses, _ := decodeStatus(pod)
		value, err := edit(pod.Annotations[annotations.NetworksKey], statuses)
		if err != nil {
			return fmt.Errorf("pod %s/%s: %w", namespace, name, err)
		}
		patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
			"resourceVersion": pod.ResourceVersion,
			"annotations":     map[string]string{annotations.NetworksKey: value},
		}})
		if err != nil {
			return err
		}
		if _, err := pods.Patch(ctx, name, k8stypes.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			return fmt.Errorf("patch pod %s/%s: %w", namespace, name, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		pod, err := pods.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("get pod %s/%s: %w", namespace, name, err)
		}
		if statuses, err := decodeStatus(pod); err == nil && done(statuses) {
			return statuses, nil
		}
		if w, err := newWarning(ctx, client, namespace, name, seen); err != nil || w != nil {
			if w != nil {
				return nil, fmt.Errorf("pod %s/%s: %s: %s", namespace, name, w.Reason, w.Message)
			}
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("pod %s/%s: network-status not updated: %w", namespace, name, context.Cause(ctx))
		case <-tick.C:
		}
	}
}

func decodeStatus(pod *corev1.Pod) ([]nadv1.NetworkStatus, error) {
	var statuses []nadv1.NetworkStatus
	raw, ok := pod.Annotations[nadv1.NetworkStatusAnnot]
	if !ok {
		return nil, errors.New("no network-status")
	}
	err := json.Unmarshal([]byte(raw), &statuses)
	return statuses, err
}

// braidReason reports whether reason is one of braid's Warnings about a
// pod's networks; other components' Warnings (the kubelet's) are not
// braid's answer.
func braidReason(reason string) bool {
	switch reason {
	case attacher.ReasonAddFailed, attacher.ReasonDelFailed, attacher.ReasonInvalidNetworks, attacher.ReasonNetworkNotReady:
		return true
	}
	return false
}

// braidWarnings are braid's Warning events on the pod, by event name,
// with how often each was seen.
func braidWarnings(ctx context.Context, client kubernetes.Interface, namespace, name string) (map[string]int32, error) {
	events, err := client.CoreV1().Events(namespace).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + name})
	if err != nil {
		return nil, fmt.Errorf("list events of pod %s/%s: %w", namespace, name, err)
	}
	out := map[string]int32{}
	for _, e := range events.Items {
		if e.Type == corev1.EventTypeWarning && braidReason(e.Reason) && e.InvolvedObject.Name == name {
			out[e.Name] = max(e.Count, 1)
		}
	}
	return out, nil
}

// newWarning is one of braid's Warnings on the pod that is not in seen, or
// came again since; nil when there is none.
func newWarning(ctx context.Context, client kubernetes.Interface, namespace, name string, seen map[string]int32) (*corev1.Event, error) {
	events, err := client.CoreV1().Events(namespace).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + name})
	if err != nil {
		return nil, fmt.Errorf("list events of pod %s/%s: %w", namespace, name, err)
	}
	for i := range events.Items {
		e := &events.Items[i]
		if e.Type != corev1.EventTypeWarning || !braidReason(e.Reason) || e.InvolvedObject.Name != name {
			continue
		}
		if n, ok := seen[e.Name]; !ok || max(e.Count, 1) > n {
			return e, nil
		}
	}
	return nil, nil
}

func newAttachCommand(o *options) *cobra.Command {
	return hotplugCommand(o, "attach POD [namespace/]NETWORK[@IFNAME] [-n NS]",
		"Add a network to a running pod (thick mode's hot-plug) and wait for it",
		func(ns, arg string) edit {
			var value string
			return edit{
				change: func(current string, statuses []nadv1.NetworkStatus) (v string, err error) {
					value, err = WithNetwork(current, ns, arg)
					return value, err
				},
				done: func(statuses []nadv1.NetworkStatus) bool { return LastAnswered(value, ns, statuses) },
			}
		})
}

func newDetachCommand(o *options) *cobra.Command {
	return hotplugCommand(o, "detach POD IFNAME [-n NS]",
		"Remove an interface from a running pod (thick mode's hot-plug) and wait for it",
		func(ns, arg string) edit {
			return edit{
				change: func(current string, statuses []nadv1.NetworkStatus) (string, error) {
					return WithoutInterface(current, ns, statuses, arg)
				},
				done: func(statuses []nadv1.NetworkStatus) bool { return !slices.Contains(interfaces(statuses), arg) },
			}
		})
}

// edit is what a hot-plug command does to the annotation, and how it sees
// in network-status that braid has done it.
type edit struct {
	change func(current string, statuses []nadv1.NetworkStatus) (string, error)
	done   func([]nadv1.NetworkStatus) bool
}

// hotplugCommand is attach's and detach's command: POD and one argument,
// the edit made of them, printed network-status once done.
func hotplugCommand(o *options, use, short string, makeEdit func(ns, arg string) edit) *cobra.Command {
	namespace, timeout := "", time.Minute
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			clients, err := o.clients()
			if err != nil {
				return err
			}
			ns := nsOrDefault(namespace)
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			e := makeEdit(ns, args[1])
			statuses, err := changeNetworks(ctx, clients.Core, ns, args[0], e.change, e.done)
			if err != nil {
				return err
			}
			return o.print(statuses, func(w io.Writer) error { return WriteNetworkStatus(w, statuses) })
		},
	}
	cmd.Flags().StringVarP(&namespace, "namespace", "n", "", "the pod's namespace (default: \"default\")")
	cmd.Flags().DurationVar(&timeout, "timeout", timeout, "how long to wait for network-status")
	return cmd
}

func nsOrDefault(ns string) string {
	if ns == "" {
		return "default"
	}
	return ns
}

func interfaces(statuses []nadv1.NetworkStatus) []string {
	out := make([]string, 0, len(statuses))
	for _, s := range statuses {
		out = append(out, s.Interface)
	}
	return out
}

// LastAnswered reports whether network-status has an interface for the
// last selection of the networks annotation value (the one attach added),
// matched as braid matches them (plan.Match): a status written for an
// earlier change, with some other new interface, does not answer it.
func LastAnswered(value, namespace string, statuses []nadv1.NetworkStatus) bool {
	sels, err := annotations.ParseNetworks(value, namespace)
	if err != nil || len(sels) == 0 {
		return false
	}
	return plan.Match(sels, secondaries(statuses))[len(sels)-1] >= 0
}

// Pending lists what the networks annotation asks for that network-status
// does not show, matched as braid matches them (plan.Match): "add
// <network>[@ifname]" for a selection no interface answers, "remove
// <ifname> (<network>)" for an interface of a network the annotation names
// fewer times. A pod whose annotation changed shows them until braidd's
// hot-plug (thick mode) applied the change, or when it failed (see the
// pod's Warning events).
func Pending(current, namespace string, statuses []nadv1.NetworkStatus) ([]string, error) {
	sels, err := annotations.ParseNetworks(current, namespace)
	if err != nil {
		return nil, err
	}
	have := secondaries(statuses)
	kept := plan.Match(sels, have)
	var out []string
	asked := map[string]bool{}
	for i, sel := range sels {
		asked[sel.Namespace+"/"+sel.Name] = true
		if kept[i] < 0 {
			out = append(out, "add "+sel.String())
		}
	}
	for j, h := range have {
		if !slices.Contains(kept, j) && asked[h.Network] {
			out = append(out, "remove "+h.IfName+" ("+h.Network+")")
		}
	}
	return out, nil
}
