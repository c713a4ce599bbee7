// Package attach carries out plans: ADD invokes each attachment in order and
// rolls back on failure, then fixes the default route, merges the results and
// records status; DEL walks the plan in reverse and goes on past failures;
// CHECK, STATUS and GC work from the same plans. Every side effect comes in
// through a small interface, so the thin plugin, the daemon and the tests
// run this same code.
package attach
