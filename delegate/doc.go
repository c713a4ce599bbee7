// Package delegate runs the CNI plugins that braid delegates to.
//
// A Delegate is one network's configuration, a single plugin config or a
// conflist, kept byte for byte as it was resolved. An Invoker runs ADD, DEL,
// CHECK, STATUS and GC for a Delegate through libcni, with a result cache
// so that DEL and CHECK get the prevResult the spec asks for. Errors from a
// delegate keep their CNI code and gain the network, plugin and interface.
package delegate
