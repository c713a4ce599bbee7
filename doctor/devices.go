package doctor

import (
	"context"
	"fmt"
	"os"

	"github.com/braid-cni/braid/devices"
	"github.com/braid-cni/braid/netconf"
)

const nameDevices = "devices"

// CheckDevices checks what braid asks for the devices of device-backed
// networks: the kubelet's pod-resources socket, else its device manager
// checkpoint, and the device-info directory. A node without device-backed
// networks needs none of them, so nothing here fails.
func CheckDevices(ctx context.Context, conf *netconf.NetConf, o Options) Result {
	k := &devices.Kubelet{Socket: conf.PodResourcesSocket, Checkpoint: conf.DeviceCheckpoint, Timeout: o.timeout()}
	infoDir := devices.InfoDir(conf.DeviceInfoDir).Path()
	pods, apiErr := k.PodCount(ctx)
	if apiErr == nil {
		return ok(nameDevices, fmt.Sprintf("kubelet pod-resources API answers on %s (%d pods); device-info in %s", k.SocketPath(), pods, infoDir))
	}
	if _, err := os.Stat(k.CheckpointPath()); err == nil {
		return warn(nameDevices, fmt.Sprintf("kubelet pod-resources API: %v; braid reads the device manager checkpoint %s instead", apiErr, k.CheckpointPath()),
			"set podResourcesSocket to the kubelet's pod-resources socket (<kubelet --root-dir>/pod-resources/kubelet.sock); in thick mode mount it into braidd")
	}
	return warn(nameDevices, fmt.Sprintf("kubelet pod-resources API: %v; no device manager checkpoint at %s: device-backed networks (NADs with k8s.v1.cni.cncf.io/resourceName) cannot get devices on this node", apiErr, k.CheckpointPath()),
		"ignore this if no NAD has a resourceName; else set podResourcesSocket and deviceCheckpoint to the kubelet's (<kubelet --root-dir>/pod-resources/kubelet.sock, <root-dir>/device-plugins/kubelet_internal_checkpoint)")
}
