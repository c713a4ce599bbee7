package attacher

import (
	"context"
	"errors"
	"fmt"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
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

// ClaimWriter writes what became of a device allocated through a DRA
// ResourceClaim into the claim's status (devices.Claims).
type ClaimWriter interface {
	RecordNetworkData(ctx context.Context, dev devices.ClaimDevice, data devices.NetworkData) error
}

// claimNetworkData tells each ResourceClaim whose device braid attached the
// interface name, IPs and MAC it became (KEP-4817's networkData), for the
// attachments with a result in results (hot-plug passes only the new
// ones). It is information for the claim's readers, not part of the
// attachment: a write that fails is logged.
func (a *Attacher) claimNetworkData(ctx context.Context, p *plan.Plan, results []*current.Result) {
	if a.Claims == nil {
		return
	}
	for i := range p.Attachments {
		att := &p.Attachments[i]
		if att.Device == nil || att.Device.Claim == nil || results[i] == nil {
			continue
		}
		data := networkData(att.IfName, results[i])
		err := a.Claims.RecordNetworkData(ctx, *att.Device.Claim, data)
		switch {
		case errors.Is(err, devices.ErrNetworkDataUnsupported):
			a.Log.Info("network data not recorded", "claim", att.Device.Claim.Namespace+"/"+att.Device.Claim.Name, "error", err)
		case err != nil:
			a.Log.Warn("network data not recorded", "claim", att.Device.Claim.Namespace+"/"+att.Device.Claim.Name, "network", att.Network, "error", err)
		}
	}
}

// networkData is the sandbox interface ifName of a result: its MAC and the
// IPs (CIDR) on it, or every IP when the result ties none to an interface.
func networkData(ifName string, res *current.Result) devices.NetworkData {
	data := devices.NetworkData{InterfaceName: ifName}
	idx := -1
	for i, iface := range res.Interfaces {
		if iface.Sandbox != "" && iface.Name == ifName {
			idx, data.HardwareAddress = i, iface.Mac
		}
	}
	for _, ip := range res.IPs {
		if ip.Interface == nil || *ip.Interface == idx || idx < 0 {
			data.IPs = append(data.IPs, ip.Address.String())
		}
	}
	return data
}
