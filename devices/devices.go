package devices

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// ResourceNameKey is the NAD annotation that makes a network device-backed.
const ResourceNameKey = "k8s.v1.cni.cncf.io/resourceName"

// ResourceName is the device resource a NAD's annotations name; "" for a
// network that is not device-backed.
func ResourceName(annotations map[string]string) string {
	return strings.TrimSpace(annotations[ResourceNameKey])
}

// Requested is how many devices of resource the containers request: each
// container's limit, else its request (for an extended resource the two
// are equal when both are given).
func Requested(containers []corev1.Container, resource string) int64 {
	var n int64
	for _, c := range containers {
		q, ok := c.Resources.Limits[corev1.ResourceName(resource)]
		if !ok {
			q = c.Resources.Requests[corev1.ResourceName(resource)]
		}
		n += q.Value()
	}
	return n
}

// Device is one device allocated to a pod.
type Device struct {
	Resource string `json:"resource"`
	ID       string `json:"id"`
	// Claim is set when the device came from a DRA ResourceClaim.
	Claim *ClaimDevice `json:"claim,omitempty"`
}

// ClaimDevice names a device in a ResourceClaim's allocation: where its
// status.devices entry goes.
type ClaimDevice struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Driver    string `json:"driver"`
	Pool      string `json:"pool"`
	Device    string `json:"device"`
}

// Lister lists the devices allocated to a pod.
type Lister interface {
	Devices(ctx context.Context, pod *corev1.Pod) ([]Device, error)
}

// Allocation hands a pod's devices out to its attachments: per resource, in
// the sorted order of their IDs, each once.
type Allocation struct {
	byResource map[string][]Device
	used       map[string]bool // resource + "\x00" + ID
}

// NewAllocation sorts devs by resource and ID; duplicates (the same device
// listed for two containers) count once.
func NewAllocation(devs []Device) *Allocation {
	a := &Allocation{byResource: map[string][]Device{}, used: map[string]bool{}}
	for _, d := range devs {
		list := a.byResource[d.Resource]
		if slices.ContainsFunc(list, func(o Device) bool { return o.ID == d.ID }) {
			continue
		}
		a.byResource[d.Resource] = append(list, d)
	}
	for _, list := range a.byResource {
		slices.SortFunc(list, func(x, y Device) int { return strings.Compare(x.ID, y.ID) })
	}
	return a
}

// Use marks a device as used already, by an attachment made earlier (a
// running pod's, when hot-plug adds another): Take skips it.
func (a *Allocation) Use(d Device) {
	a.used[d.Resource+"\x00"+d.ID] = true
}

// Take returns the next unused device of resource. want, when set, asks for
// that device (a deviceID in the pod's network selection).
func (a *Allocation) Take(resource, want string) (Device, error) {
	for _, d := range a.byResource[resource] {
		if a.used[resource+"\x00"+d.ID] || (want != "" && d.ID != want) {
			continue
		}
		a.used[resource+"\x00"+d.ID] = true
		return d, nil
	}
	switch {
	case want != "":
		return Device{}, fmt.Errorf("device %s of resource %s is not allocated to the pod or already used by another network (the pod's allocation: %s)", want, resource, a)
	case len(a.byResource[resource]) == 0:
		return Device{}, fmt.Errorf("no device of resource %s is allocated to the pod: does it request %s in resources.limits? (the pod's allocation: %s)", resource, resource, a)
	default:
		return Device{}, fmt.Errorf("every device of resource %s allocated to the pod is used by another of its networks: request one more %s (the pod's allocation: %s)", resource, resource, a)
	}
}

// String lists the allocation: "example.com/vf=[vf0 vf1], other=[x]", or
// "none".
func (a *Allocation) String() string {
	if len(a.byResource) == 0 {
		return "none"
	}
	resources := make([]string, 0, len(a.byResource))
	for r := range a.byResource {
		resources = append(resources, r)
	}
	slices.Sort(resources)
	parts := make([]string, len(resources))
	for i, r := range resources {
		ids := make([]string, len(a.byResource[r]))
		for j, d := range a.byResource[r] {
			ids[j] = d.ID
		}
		parts[i] = r + "=[" + strings.Join(ids, " ") + "]"
	}
	return strings.Join(parts, ", ")
}

// Sources asks several listers and joins what they say: the kubelet for
// device plugins, ResourceClaims for DRA. What the others found comes back
// with the errors of those that failed: a pod whose devices all come from
// claims does not need the kubelet's socket, and the caller decides.
type Sources []Lister

// Devices implements Lister.
func (s Sources) Devices(ctx context.Context, pod *corev1.Pod) ([]Device, error) {
	var out []Device
	var errs []error
	for _, l := range s {
		devs, err := l.Devices(ctx, pod)
		if err != nil {
			errs = append(errs, err)
		}
		out = append(out, devs...)
	}
	return out, errors.Join(errs...)
}
