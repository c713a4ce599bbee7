// Package framework runs a real Kubernetes control plane, and optionally a
// real node, for braid's end-to-end tests and demo.
//
// The control plane is an etcd and a kube-apiserver on 127.0.0.1 with free
// ports, RBAC authorization and two static tokens (a cluster admin and the
// least-privilege braid service account). By default no controller-manager,
// scheduler or kubelet runs, so pods are plain API objects, namespaces are
// never finalized and service accounts must be created by hand; the helpers
// here account for that. With Options.Controllers, kube-controller-manager
// and kube-scheduler run as well and the ServiceAccount admission plugin is
// on.
//
// StartNode adds a node to such a cluster: containerd (with runc) and a
// kubelet registered as "localhost", running pods through the host's real
// CNI directories, where the plugin under test is installed. A node changes
// the host, and Stop puts it back; one node runs per host at a time. A node
// whose process was killed before Stop is undone by the next StartNode, from
// the record the node kept of what it changed.
//
// With Options.Detach and NodeOptions.Detach the processes outlive the Go
// process that started them: State records a control plane or node, and
// AttachControlPlane and AttachNode give a later process one whose Stop
// stops it and puts the host back (hack/demo's `down` does).
//
// The package also installs the NetworkAttachmentDefinition CRD, applies the
// manifests under deployments/ (InstallBraid installs braid in thin or thick
// mode as an operator would, for the node tier and the demo), builds and imports images, waits for pods
// with failure reports that carry their events, and runs a kubelet device
// plugin (StartDevicePlugin) and a DRA kubelet plugin (StartDRADriver) of
// its own for device-backed networks.
package framework
