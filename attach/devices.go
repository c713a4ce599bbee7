package attach

import (
	"fmt"

	"github.com/containernetworking/cni/pkg/types"
	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"

	"github.com/braid-cni/braid/devices"
	"github.com/braid-cni/braid/plan"
)

// prepareDevice copies the device plugin's device-info file to the file the
// delegate is handed as CNIDeviceInfoFile, as the device-info spec asks.
func prepareDevice(att *plan.Attachment) error {
	dev := att.Device
	if dev == nil || dev.InfoFile == "" {
		return nil
	}
	if err := devices.Prepare(dev.PluginInfoFile, dev.InfoFile); err != nil {
		return types.NewError(types.ErrIOFailure, fmt.Sprintf("network %s (interface %s): device %s of %s", att.Network, att.IfName, dev.ID, dev.Resource), err.Error())
	}
	return nil
}

// deviceInfo is what network-status reports for a device-backed attachment:
// the delegate's device-info file, which starts as the device plugin's copy.
func (a *Attacher) deviceInfo(att *plan.Attachment) *nadv1.DeviceInfo {
	dev := att.Device
	if dev == nil || dev.InfoFile == "" {
		return nil
	}
	info, err := devices.Load(dev.InfoFile)
	if err != nil {
		a.Log.Warn("device-info not reported", "network", att.Network, "ifname", att.IfName, "error", err)
		return nil
	}
	return info
}

// releaseDevice removes the device-info file braid handed the delegate,
// once the delegate has let the device go. A file that cannot be removed is
// logged, not a failed DEL: the runtime would retry it forever.
func (a *Attacher) releaseDevice(p *plan.Plan, att *plan.Attachment) {
	if att.Device == nil || att.Device.InfoFile == "" {
		return
	}
	if err := devices.Remove(att.Device.InfoFile); err != nil {
		a.Log.Warn("device-info file left behind", "container", p.ContainerID, "network", att.Network, "error", err)
	}
}
