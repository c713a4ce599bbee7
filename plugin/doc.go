// Package plugin is the entry to braid's verbs: Run(ctx, command, args)
// loads the call's config (the runtime's on stdin in the thin plugin; in
// braidd the daemon's own settings with only the caller's runtime keys),
// reads CNI_ARGS, builds the clients, the plan builder and the attacher,
// takes the container's lock and runs the verb under one deadline. skel
// reaches it through Funcs (which first refuses to run under braid's own
// mark), braidd with the shim's connection as ctx. The decisions live in
// plan and attach; this package only wires them to the call.
package plugin
