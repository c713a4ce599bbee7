// Package annotations turns the pod annotations that ask for extra networks
// into values braid can act on, and rejects bad ones before anything is
// created.
//
// Three annotations are understood. NetworksKey lists the secondary networks,
// either in the short form "[namespace/]name[@ifname], ..." or as a JSON list
// of network selection elements (multi-net spec v1.3, plus "deviceID").
// DefaultNetworkKey replaces the cluster default network with
// "[namespace/]name". SkipDefaultNetworksKey ("true") leaves out braid's
// defaultNetworks for the pod.
//
// Work is split in two steps. ParseNetworks and ParseDefaultNetwork check
// syntax only and fill in the pod's namespace where none was given. Validate
// then checks the values of the whole list at once (names, interface names,
// addresses, one default route per IP family, port mappings, bandwidth) and
// reports every problem it finds, each as a *FieldError that names the
// offending element, so a user can fix the annotation in one go.
//
// The package is pure: it reads no files, talks to no API server and keeps no
// state, so callers can run it on untrusted input as often as they like.
package annotations
