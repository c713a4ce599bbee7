// Package plugin is the thin CNI plugin: skel's adapter to braid's core
// (package attacher). Run(ctx, command, args) parses the runtime's config,
// forwards the call to braidd when the config names its socket, else turns
// the config and CNI_ARGS into the core's Request, builds the API clients
// from the config's kubeconfig, runs the verb under one deadline and prints
// ADD's result. Funcs first refuses to run under braid's own mark. The
// decisions live in plan and attacher; this package only adapts.
package plugin
