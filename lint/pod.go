package lint

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/braid-cni/braid/annotations"
	"github.com/braid-cni/braid/devices"
)

// podTemplate is the pod template inside a workload, at path.
type podTemplate struct {
	path     string // prefix of its fields, "" for a Pod
	template *corev1.PodTemplateSpec
}

// workload checks a Pod, or the pod template of a workload. Other kinds
// are not linted.
func (l *linter) workload(o object) {
	var w struct {
		metav1.ObjectMeta `json:"metadata"`
		Spec              struct {
			Containers  []corev1.Container      `json:"containers"` // a Pod's
			Template    *corev1.PodTemplateSpec `json:"template"`
			JobTemplate *struct {
				Spec struct {
					Template *corev1.PodTemplateSpec `json:"template"`
				} `json:"spec"`
			} `json:"jobTemplate"`
		} `json:"spec"`
	}
	var t podTemplate
	switch o.meta.Kind {
	case "Pod", "Deployment", "DaemonSet", "StatefulSet", "ReplicaSet", "Job", "CronJob":
	default:
		return
	}
	if err := json.Unmarshal(o.raw, &w); err != nil {
		l.undecodable(o, err)
		return
	}
	ns := namespaceOr(w.Namespace)
	r := l.reporter(o, ns, w.Name)
	switch o.meta.Kind {
	case "Pod":
		t = podTemplate{template: &corev1.PodTemplateSpec{ObjectMeta: w.ObjectMeta, Spec: corev1.PodSpec{Containers: w.Spec.Containers}}}
	case "CronJob":
		if w.Spec.JobTemplate != nil {
			t = podTemplate{path: "spec.jobTemplate.spec.template.", template: w.Spec.JobTemplate.Spec.Template}
		}
	default:
		t = podTemplate{path: "spec.template.", template: w.Spec.Template}
	}
	if t.template == nil {
		return
	}
	l.networks(r, ns, t.path, t.template)
}

// networks checks the networks annotation with the plugin's own parser,
// then each selection against the linted NADs.
func (l *linter) networks(r *reporter, ns, prefix string, template *corev1.PodTemplateSpec) {
	if _, err := annotations.SkipDefaultNetworks(template.Annotations); err != nil {
		r.add(prefix+"metadata.annotations["+annotations.SkipDefaultNetworksKey+"]", Error, "%v: braid would refuse the pod", err)
	}
	raw, ok := template.Annotations[annotations.NetworksKey]
	if !ok {
		return
	}
	base := prefix + "metadata.annotations[" + annotations.NetworksKey + "]"
	sels, err := annotations.ParseNetworks(raw, ns)
	if err != nil {
		r.add(base, Error, "%v", err)
		return
	}
	if err := annotations.CheckCount(len(sels), l.opts.networkLimit()); err != nil {
		r.add(base, Error, "%v: braid would refuse the pod", err)
		return
	}
	if err := annotations.Validate(sels, annotations.PodIfName); err != nil {
		for _, e := range unjoin(err) {
			var fe *annotations.FieldError
			if errors.As(e, &fe) {
				r.add(fmt.Sprintf("%s[%d].%s", base, fe.Index-1, fe.Field), Error, "%s (network %q)", fe.Reason, fe.Element)
			} else {
				r.add(base, Error, "%v", e)
			}
		}
		return
	}
	needs := map[string][]string{} // device resource -> the networks that need one
	for i, sel := range sels {
		id := sel.Namespace + "/" + sel.Name
		n, found := l.nads[id]
		if !found {
			r.add(fmt.Sprintf("%s[%d].name", base, i), Warning, "network-attachment-definition %s is not among the linted files: it must exist in the cluster", id)
			continue
		}
		if n.resource != "" {
			needs[n.resource] = append(needs[n.resource], id)
		}
		if n.delegate == nil {
			continue // its config is empty (a file on the node) or reported broken
		}
		declared := n.delegate.Capabilities()
		for _, req := range sel.RuntimeRequests() {
			// A device-backed network's deviceID picks one of the pod's
			// devices, which braid puts into the config itself.
			if req.Capability == "deviceID" && n.resource != "" {
				continue
			}
			if !slices.Contains(declared, req.Capability) {
				r.add(fmt.Sprintf("%s[%d].%s", base, i, req.Key), Error,
					"no plugin of network %s (%s) declares capability %q: braid would not pass the request on",
					id, strings.Join(n.delegate.Types(), ", "), req.Capability)
			}
		}
	}
	devicesRequested(r, prefix, template.Spec, needs)
}

// devicesRequested checks that the pod requests a device for each
// device-backed network it names, as braid hands one to each at ADD.
func devicesRequested(r *reporter, prefix string, spec corev1.PodSpec, needs map[string][]string) {
	resources := make([]string, 0, len(needs))
	for res := range needs {
		resources = append(resources, res)
	}
	slices.Sort(resources)
	for _, res := range resources {
		have := devices.Requested(spec.Containers, res)
		if want := int64(len(needs[res])); have < want {
			r.add(prefix+"spec.containers[].resources.limits["+res+"]", Error,
				"%d device-backed network(s) need a device of %s each (%s), the containers request %d: braid would refuse the pod",
				want, res, strings.Join(needs[res], ", "), have)
		}
	}
}

// unjoin returns the errors an errors.Join holds, or err alone.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
