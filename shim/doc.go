// Package shim is braid-shim, thick mode's CNI plugin and braid's one
// forwarder to braidd: every verb goes to the daemon over package wire, its
// output printed and its CNI error returned with the code kept; a daemon
// that does not answer makes ADD, CHECK and GC try again later and STATUS
// report the plugin unavailable, and a DEL it does not answer runs locally,
// from the node's journal, so that a pod can always be torn down. The thin
// braid runs this same forwarder for a config that names daemonSocketDir.
package shim
