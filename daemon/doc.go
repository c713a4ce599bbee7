// Package daemon is braidd's server: it answers the shim's CNI calls on a
// unix socket by running the same verbs as the thin plugin (package plugin)
// with the daemon's API access, at most MaxConcurrent at once with DEL
// admitted ahead of ADD, and serves health, readiness and metrics for the
// node's operators.
package daemon
