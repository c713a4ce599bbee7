// Package nad resolves networks to delegate CNI config bytes.
//
// A network is named by a NetworkAttachmentDefinition (its spec.config, or,
// when that is empty, the file in confDir whose config has the NAD's name),
// or, for the cluster network, by a NAD, a config name in confDir, a
// config file or a directory whose first config wins. The API is reached
// through the small Getter interface, so the thin plugin, the daemon and the
// tests each bring their own.
//
// Config is the one step from a NAD's spec.config to the delegate config
// braid runs; the resolver, the admission webhook and braidctl lint all
// call it, so they agree on what a NAD's config is.
package nad
