// Package server is braidd's server: it answers the shim's CNI calls on a
// unix socket (the framed protocol of package wire, and HTTP for shims from
// before it, told apart by the first bytes) by running braid's core (package attacher) with the daemon's
// settings and the caller's runtime keys, its informer-backed API and
// delegate metrics, under the shim's connection as the verb's context. It
// checks each request as skel would and refuses one carrying braid's own
// mark, runs at most MaxConcurrent at once with DEL admitted ahead of ADD (a
// DEL first cancels the same container's ADD in flight), and serves
// health, readiness and metrics for the node's operators. STATUS, the
// node's network health that containerd 2 asks for every few seconds,
// bypasses the bound and is shared by the calls that arrive together.
package server
