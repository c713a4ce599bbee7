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
	RecordDeviceStatus(ctx context.Context, dev devices.ClaimDevice, st devices.DeviceStatus) error
}

// claimNetworkData tells each ResourceClaim whose device braid attached the
// interface name, IPs and MAC it became (KEP-4817's networkData) with a
// Ready condition, for the attachments with a result in results (hot-plug
// passes only the new ones).
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
		a.claimStatus(ctx, att, devices.DeviceStatus{Network: &data, Ready: true, Reason: devices.ReasonConfigured,
			Message: fmt.Sprintf("interface %s of pod %s/%s (network %s)", att.IfName, p.Pod.Namespace, p.Pod.Name, att.Network)})
	}
}

// claimFailed tells the ResourceClaim of a device-backed attachment whose
// ADD failed why its device is not ready.
func (a *Attacher) claimFailed(ctx context.Context, p *plan.Plan, att *plan.Attachment, err error) {
	if a.Claims == nil || att.Device == nil || att.Device.Claim == nil {
		return
	}
	a.claimStatus(ctx, att, devices.DeviceStatus{Reason: devices.ReasonAttachFailed,
		Message: fmt.Sprintf("interface %s of pod %s/%s (network %s): %s", att.IfName, p.Pod.Namespace, p.Pod.Name, att.Network, message(err))})
}

// claimRemoved tells the ResourceClaim of a device-backed attachment that
// hot-plug removed that its device is an interface no more.
func (a *Attacher) claimRemoved(ctx context.Context, p *plan.Plan, att *plan.Attachment) {
	if a.Claims == nil || att.Device == nil || att.Device.Claim == nil {
		return
	}
	a.claimStatus(ctx, att, devices.DeviceStatus{Reason: devices.ReasonRemoved,
		Message: fmt.Sprintf("interface %s removed from pod %s/%s (network %s)", att.IfName, p.Pod.Namespace, p.Pod.Name, att.Network)})
}

// claimStatus writes st for the attachment's claimed device. It is
// information for the claim's readers, not part of the attachment: a write
// that fails is logged.
func (a *Attacher) claimStatus(ctx context.Context, att *plan.Attachment, st devices.DeviceStatus) {
	// Its own deadline, detached from ctx's: a failed ADD's ctx may be
	// the one that ended.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), eventTimeout)
	defer cancel()
	claim := att.Device.Claim.Namespace + "/" + att.Device.Claim.Name
	err := a.Claims.RecordDeviceStatus(ctx, *att.Device.Claim, st)
	switch {
	case errors.Is(err, devices.ErrNetworkDataUnsupported):
		a.Log.Info("device status not recorded", "claim", claim, "error", err)
	case err != nil:
		a.Log.Warn("device status not recorded", "claim", claim, "network", att.Network, "error", err)
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
