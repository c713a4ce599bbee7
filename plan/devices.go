package plan

import (
	"context"
	"fmt"
	"slices"

	"github.com/containernetworking/cni/pkg/types"
	corev1 "k8s.io/api/core/v1"

	"github.com/braid-cni/braid/delegate"
	"github.com/braid-cni/braid/devices"
	"github.com/braid-cni/braid/nad"
)

// resourceName is the device resource of a network resolved from a
// NetworkAttachmentDefinition annotated with one; "" otherwise.
func resourceName(n *nad.Network) string {
	if n == nil || n.NAD == nil {
		return ""
	}
	return devices.ResourceName(n.NAD.Annotations)
}

// assignDevices gives each device-backed attachment the next unused device
// of its resource (or the one the pod's selection names), in plan order:
// the ID goes into the delegate config as "deviceID" and, with the
// device-info file, into its capability args. Devices in used (those of a
// running pod's attachments) are never handed out. The pod's devices are
// listed once, and only when some network needs one.
func (b *Builder) assignDevices(ctx context.Context, pod *corev1.Pod, p *Plan, resources, wants []string, used []devices.Device) error {
	if !slices.ContainsFunc(resources, func(r string) bool { return r != "" }) {
		return nil
	}
	if pod == nil {
		return types.NewError(types.ErrInvalidNetworkConfig, "a device-backed network needs the pod's device allocation, and the runtime named no pod", "")
	}
	var alloc *devices.Allocation
	var listErr error // devices of this pod that may exist but could not be listed
	if b.Devices != nil {
		var devs []devices.Device
		devs, listErr = b.Devices.Devices(ctx, pod)
		alloc = devices.NewAllocation(devs)
		for _, d := range used {
			alloc.Use(d)
		}
	}
	// Devices the pod names go first, so that the others cannot take them.
	taken := make([]devices.Device, len(resources))
	for _, named := range []bool{true, false} {
		for i, res := range resources {
			if res == "" || alloc == nil || (wants[i] != "") != named {
				continue
			}
			d, err := alloc.Take(res, wants[i])
			att := &p.Attachments[i]
			switch {
			case err != nil && listErr != nil:
				// The device may be among those that could not be listed.
				return types.NewError(types.ErrTryAgainLater, fmt.Sprintf("pod %s/%s: network %s (interface %s): list allocated devices", pod.Namespace, pod.Name, att.Network, att.IfName), listErr.Error())
			case err != nil:
				return types.NewError(types.ErrInvalidNetworkConfig, fmt.Sprintf("pod %s/%s: network %s (interface %s): %v", pod.Namespace, pod.Name, att.Network, att.IfName, err), "")
			}
			taken[i] = d
		}
	}
	for i, res := range resources {
		if res == "" {
			continue
		}
		att := &p.Attachments[i]
		dev := &Device{Device: devices.Device{Resource: res}}
		att.Device = dev
		if alloc == nil {
			continue
		}
		d := taken[i]
		dev.Device = d
		dev.PluginInfoFile = b.DeviceInfo.PluginFile(res, d.ID)
		dev.InfoFile = b.DeviceInfo.CNIFile(att.Network, p.ContainerID, att.IfName)
		config, err := delegate.InjectDeviceID(att.Config, d.ID)
		if err != nil {
			return types.NewError(types.ErrInvalidNetworkConfig, fmt.Sprintf("network %s: %v", att.Network, err), "")
		}
		att.Config = config
		args := make(map[string]any, len(att.CapabilityArgs)+2)
		for k, v := range att.CapabilityArgs {
			args[k] = v
		}
		args["deviceID"] = d.ID
		args["CNIDeviceInfoFile"] = dev.InfoFile
		att.CapabilityArgs = args
	}
	return nil
}
