package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/braid-cni/braid/annotations"
	"github.com/braid-cni/braid/devices"
	"github.com/braid-cni/braid/nad"
	"github.com/braid-cni/braid/netconf"
)

// injectTimeout bounds the NAD reads of one review; the API server's own
// timeout for the webhook is longer.
const injectTimeout = 3 * time.Second

// Injector is the mutating webhook that makes a pod request the devices its
// device-backed networks need: for each resource, one device per network
// naming a NAD annotated with it, added to the first container where the
// pod's containers request fewer. It never refuses a pod: what it cannot
// read (a bad annotation, a missing NAD) it leaves to the validating
// webhook and to braid's ADD.
type Injector struct {
	NADs nad.Getter
	// Namespaces holds braid's namespaceIsolation and globalNamespaces:
	// the NAD of a namespace the pod may not use
	// (netconf.NetConf.NamespaceAllowed) is not read. nil: every
	// namespace's is.
	Namespaces *netconf.NetConf
	Log        *slog.Logger
}

var _ http.Handler = (*Injector)(nil)

// ServeHTTP answers a review with the pod allowed, patched where it lacks
// device requests.
func (i *Injector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	serveReview(w, r, func(req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
		ctx, cancel := context.WithTimeout(r.Context(), injectTimeout)
		defer cancel()
		return i.review(ctx, req)
	})
}

func (i *Injector) review(ctx context.Context, req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	resp := &admissionv1.AdmissionResponse{UID: req.UID, Allowed: true}
	if req.Resource != podResource || req.Operation != admissionv1.Create {
		return resp
	}
	var pod corev1.Pod
	if err := json.Unmarshal(req.Object.Raw, &pod); err != nil {
		i.Log.Info("pod not decoded; no devices injected", "namespace", req.Namespace, "error", err)
		return resp
	}
	patch, added, err := i.patch(ctx, &pod, req.Namespace)
	if err != nil {
		i.Log.Warn("no devices injected", "namespace", req.Namespace, "pod", pod.Name+pod.GenerateName, "error", err)
		return resp
	}
	if patch == nil {
		return resp
	}
	jsonPatch := admissionv1.PatchTypeJSONPatch
	resp.Patch, resp.PatchType = patch, &jsonPatch
	resp.Warnings = []string{"braid-webhook: container " + pod.Spec.Containers[0].Name + " requests " + strings.Join(added, ", ") + " for the pod's device-backed networks"}
	i.Log.Info("devices injected", "namespace", req.Namespace, "pod", pod.Name+pod.GenerateName, "added", added)
	return resp
}

// patch returns the JSON patch that sets the first container's resources so
// that the pod requests a device per device-backed network, and what it
// added ("intel.com/sriov: 2"); nil when nothing is missing.
func (i *Injector) patch(ctx context.Context, pod *corev1.Pod, namespace string) ([]byte, []string, error) {
	raw, ok := pod.Annotations[annotations.NetworksKey]
	if !ok || len(pod.Spec.Containers) == 0 {
		return nil, nil, nil
	}
	sels, err := annotations.ParseNetworks(raw, namespace)
	if err != nil {
		return nil, nil, nil // the validating webhook tells why
	}
	need := map[string]int64{}
	for _, sel := range sels {
		if i.Namespaces != nil && !i.Namespaces.NamespaceAllowed(namespace, sel.Namespace) {
			// braid refuses the pod for this network, and the webhook
			// reads no NAD its author may not use.
			continue
		}
		obj, err := i.NADs.GetNAD(ctx, sel.Namespace, sel.Name)
		if apierrors.IsNotFound(err) {
			continue // braid's ADD waits for it and says so
		}
		if err != nil {
			return nil, nil, fmt.Errorf("get network-attachment-definition %s/%s: %w", sel.Namespace, sel.Name, err)
		}
		if res := devices.ResourceName(obj.Annotations); res != "" {
			need[res]++
		}
	}
	first := pod.Spec.Containers[0].Resources.DeepCopy()
	var added []string
	for _, res := range slices.Sorted(maps.Keys(need)) {
		missing := need[res] - devices.Requested(pod.Spec.Containers, res)
		if missing <= 0 {
			continue
		}
		name := corev1.ResourceName(res)
		total := *resource.NewQuantity(missing+devices.Requested(pod.Spec.Containers[:1], res), resource.DecimalSI)
		// An extended resource is requested with limits; requests, when
		// given, must be equal.
		if first.Limits == nil {
			first.Limits = corev1.ResourceList{}
		}
		first.Limits[name] = total
		if _, ok := first.Requests[name]; ok {
			first.Requests[name] = total
		}
		added = append(added, fmt.Sprintf("%s: %d", res, missing))
	}
	if len(added) == 0 {
		return nil, nil, nil
	}
	patch, err := json.Marshal([]map[string]any{{"op": "add", "path": "/spec/containers/0/resources", "value": first}})
	if err != nil {
		return nil, nil, fmt.Errorf("encode patch: %w", err)
	}
	return patch, added, nil
}
