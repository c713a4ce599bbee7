package plan

import (
	"bytes"
	"context"
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"

	"github.com/braid-cni/braid/annotations"
	"github.com/braid-cni/braid/devices"
)

// Change is what a running container's networks annotation asks of its
// journaled plan (hot-plug): Next is the plan once it is done, Added the
// indexes of its attachments that are new, Removed the attachments of the
// previous plan that go. The cluster network, inline delegates and
// defaultNetworks stay as they are.
type Change struct {
	Next    *Plan
	Added   []int
	Removed []Attachment
}

// Empty reports whether the annotation asks for nothing new.
func (c *Change) Empty() bool { return len(c.Added) == 0 && len(c.Removed) == 0 }

// Replan reads the pod of prev again and computes the change its networks
// annotation asks for. An attachment stays when a selection names its
// network and interface; an unnamed selection keeps the first unclaimed
// attachment of its network, in order, so unnamed interfaces keep their
// names (net2 stays net2 when net1 goes); a new unnamed selection takes
// the lowest free netN. Kept attachments are kept as journaled, result
// and all; one the pod now asks for with other parameters (ips, mac,
// cni-args, default-route, deviceID...) is removed and added again under
// its name. A pod that is gone yields no change, and one recreated under
// its name code 11 (either way the runtime's DEL is coming); other errors
// are Build's: code 7 for what the pod asks wrongly, 11 for what is not
// there yet. A new device-backed attachment takes a device of the pod's
// allocation that no attachment kept uses (none free: code 7 naming the
// resource and the allocation).
func (b *Builder) Replan(ctx context.Context, prev *Plan) (*Change, error) {
	if !prev.Pluggable {
		return nil, invalid("container %s: journaled before braid recorded which networks the annotation chose; recreate the pod to change its networks", prev.ContainerID)
	}
	pod, err := b.pod(ctx, prev.Pod)
	if err != nil {
		return nil, err
	}
	if pod == nil {
		return &Change{Next: prev}, nil
	}
	fixed, selected := split(prev.Attachments)
	sels, err := b.ownSelections(pod, fixed)
	if err != nil {
		return nil, err
	}
	kept := match(sels, selected)
	names := newNames(sels, kept, selected, fixed)
	// An attachment the pod now asks for with other parameters is made
	// again, under its name: removed, then added.
	for i, k := range kept {
		if k < 0 || len(selected[k].Parameters) == 0 {
			continue
		}
		params, err := sels[i].Parameters()
		if err != nil {
			return nil, invalid("pod %s/%s: %v", pod.Namespace, pod.Name, err)
		}
		if !bytes.Equal(params, selected[k].Parameters) {
			kept[i] = -1
		}
	}

	next := *prev
	next.Attachments = slices.Clone(fixed)
	change := &Change{Next: &next}
	claimed := make([]bool, len(selected))
	// As in Build, resources[i] and wants[i] are attachment i's device
	// resource and the device its selection names; only new ones get one.
	resources, wants := make([]string, len(fixed)), make([]string, len(fixed))
	for i, sel := range sels {
		if kept[i] >= 0 {
			claimed[kept[i]] = true
			next.Attachments = append(next.Attachments, selected[kept[i]])
			resources, wants = append(resources, ""), append(wants, "")
			continue
		}
		a, resource, err := b.attachment(ctx, sel, names[i], false)
		if err != nil {
			return nil, err
		}
		a.Selected = true
		change.Added = append(change.Added, len(next.Attachments))
		next.Attachments = append(next.Attachments, *a)
		resources, wants = append(resources, resource), append(wants, sel.DeviceID)
	}
	for i, a := range selected {
		if !claimed[i] {
			change.Removed = append(change.Removed, a)
		}
	}
	if err := b.checkDelegates(&next); err != nil {
		return nil, err
	}
	if next.DefaultRoutes, err = routeRequests(next.Attachments); err != nil {
		return nil, err
	}
	if err := b.assignDevices(ctx, pod, &next, resources, wants, devicesInUse(next.Attachments)); err != nil {
		return nil, err
	}
	return change, nil
}

// devicesInUse are the devices of the attachments that have one: a new
// attachment takes another. Those of removed attachments are free again
// (they go before the new ones come).
func devicesInUse(atts []Attachment) []devices.Device {
	var out []devices.Device
	for _, a := range atts {
		if a.Device != nil && a.Device.ID != "" {
			out = append(out, a.Device.Device)
		}
	}
	return out
}

// split separates the attachments hot-plug never touches from those the
// networks annotation chose, each in plan order.
func split(atts []Attachment) (fixed, selected []Attachment) {
	for _, a := range atts {
		if a.Selected {
			selected = append(selected, a)
		} else {
			fixed = append(fixed, a)
		}
	}
	return fixed, selected
}

// ownSelections parses and checks the pod's networks annotation as Build
// does, against the attachments that stay whatever it says.
func (b *Builder) ownSelections(pod *corev1.Pod, fixed []Attachment) ([]*annotations.Selection, error) {
	own, err := annotations.ParseNetworks(pod.Annotations[annotations.NetworksKey], pod.Namespace)
	if err != nil {
		return nil, invalid("pod %s/%s: annotation %s: %v", pod.Namespace, pod.Name, annotations.NetworksKey, err)
	}
	if err := annotations.CheckCount(len(fixed)-1+len(own), b.Conf.NetworkLimit()); err != nil {
		return nil, invalid("pod %s/%s: %v", pod.Namespace, pod.Name, err)
	}
	runtimeIfName := fixed[0].IfName
	if err := annotations.Validate(own, runtimeIfName); err != nil {
		return nil, invalid("pod %s/%s: annotation %s: %v", pod.Namespace, pod.Name, annotations.NetworksKey, err)
	}
	for _, sel := range own {
		if !b.Conf.NamespaceAllowed(pod.Namespace, sel.Namespace) {
			return nil, b.isolationError(pod, sel)
		}
		for _, a := range fixed[1:] {
			if sel.InterfaceRequest == a.IfName {
				return nil, invalid("pod %s/%s: annotation %s: interface %s of %s is %s's (from braid's config)", pod.Namespace, pod.Name, annotations.NetworksKey, a.IfName, sel, a.Network)
			}
		}
	}
	return own, nil
}

// Interface is an existing attachment as matching sees it: its network
// ("namespace/name") and interface name.
type Interface struct{ Network, IfName string }

// Match pairs the annotation's selections with existing interfaces, the
// one rule of hot-plug (and of braidctl's view of it): kept[i] is the
// index in have of selection i's interface, or -1 when it has none. A
// selection naming its interface takes the one of its network with that
// name; an unnamed one the first unclaimed one of its network that no
// selection names. Named selections claim first.
func Match(sels []*annotations.Selection, have []Interface) []int {
	kept := make([]int, len(sels))
	claimed := make([]bool, len(have))
	claim := func(i int, fits func(Interface) bool) {
		kept[i] = -1
		for j, h := range have {
			if !claimed[j] && h.Network == networkOf(sels[i]) && fits(h) {
				claimed[j], kept[i] = true, j
				return
			}
		}
	}
	for i, sel := range sels {
		if sel.InterfaceRequest != "" {
			claim(i, func(h Interface) bool { return h.IfName == sel.InterfaceRequest })
		}
	}
	named := func(ifName string) bool {
		return slices.ContainsFunc(sels, func(s *annotations.Selection) bool { return s.InterfaceRequest == ifName })
	}
	for i, sel := range sels {
		if sel.InterfaceRequest == "" {
			claim(i, func(h Interface) bool { return !named(h.IfName) })
		}
	}
	return kept
}

// match is Match on the annotation's attachments.
func match(sels []*annotations.Selection, selected []Attachment) []int {
	have := make([]Interface, len(selected))
	for i, a := range selected {
		have[i] = Interface{Network: a.Network, IfName: a.IfName}
	}
	return Match(sels, have)
}

// networkOf is how an attachment of sel names its network.
func networkOf(sel *annotations.Selection) string { return sel.Namespace + "/" + sel.Name }

// newNames names the selections that are new: the interface they request,
// else the lowest netN no attachment has and no selection requests.
func newNames(sels []*annotations.Selection, kept []int, selected, fixed []Attachment) []string {
	taken := map[string]bool{}
	for _, a := range fixed {
		taken[a.IfName] = true
	}
	for i, sel := range sels {
		if sel.InterfaceRequest != "" {
			taken[sel.InterfaceRequest] = true
		}
		if kept[i] >= 0 {
			taken[selected[kept[i]].IfName] = true
		}
	}
	names := make([]string, len(sels))
	n := 1
	for i, sel := range sels {
		switch {
		case kept[i] >= 0:
			names[i] = selected[kept[i]].IfName
		case sel.InterfaceRequest != "":
			names[i] = sel.InterfaceRequest
		default:
			for taken["net"+strconv.Itoa(n)] {
				n++
			}
			names[i] = "net" + strconv.Itoa(n)
			taken[names[i]] = true
		}
	}
	return names
}
