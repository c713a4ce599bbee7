// Package result merges the CNI results of a pod's attachments into the one
// result that braid prints for the container runtime.
//
// The cluster network's result comes first and supplies the DNS settings;
// the secondary networks' interfaces, addresses and routes follow in
// attachment order. Because a merged result lists the interfaces of every
// part, each address's interface index is renumbered to keep pointing at the
// interface its own plugin meant.
package result
