// Package lint checks NetworkAttachmentDefinition and pod manifests before
// they reach a cluster: the CNI config of each NAD, the networks annotation
// of each pod (and of the pod templates of workloads), the capabilities a
// pod's requests need, and, when asked, the plugin binaries on a node.
//
// It calls braid's own parsing (annotations, nad.Config for spec.config,
// delegate.Load) so that it never refuses what braid accepts; the
// checks it adds on top report what would fail later, at ADD time, or what
// braid would silently ignore.
package lint
