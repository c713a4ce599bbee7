// Package devices finds the devices a pod was given for its device-backed
// networks and hands them out, one per attachment.
//
// A NetworkAttachmentDefinition annotated k8s.v1.cni.cncf.io/resourceName
// is device-backed: its plugin (SR-IOV CNI, host-device, ...) needs the ID
// of a device the kubelet allocated to the pod. The kubelet tells through
// its pod-resources API (Kubelet), or, when that socket does not answer,
// through the device manager's checkpoint file; Dynamic Resource Allocation
// tells through the pod's ResourceClaims (Claims). An Allocation hands the
// IDs out in a stable order. The device-info files of the NPWG device-info
// spec are named and read by InfoDir.
package devices
