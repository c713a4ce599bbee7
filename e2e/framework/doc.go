// Package framework runs a real, minimal Kubernetes control plane for braid's
// end-to-end tests and demo: an etcd and a kube-apiserver on 127.0.0.1 with
// free ports, RBAC authorization and two static tokens (a cluster admin and
// the least-privilege braid service account). No controller-manager,
// scheduler or kubelet runs, so pods are plain API objects, namespaces are
// never finalized and service accounts must be created by hand; the helpers
// here account for that. It also installs the NetworkAttachmentDefinition CRD
// and applies the manifests under deployments/.
package framework
