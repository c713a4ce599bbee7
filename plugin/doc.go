// Package plugin adapts braid to skel: it loads the config and CNI_ARGS,
// builds the clients, the plan builder and the attacher, and calls them with
// one deadline per verb. All decisions live in plan and attach; this package
// only wires them to the process.
package plugin
