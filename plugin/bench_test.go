package plugin

import (
	"io"
	"testing"

	"github.com/containernetworking/cni/pkg/skel"
)

// BenchmarkPluginAdd runs ADD and DEL end to end: config parsing, plan,
// journal, libcni with its result cache, merge and printing; only the
// delegate binary is faked.
func BenchmarkPluginAdd(b *testing.B) {
	e, args := benchEnv(b, "bench")
	for i := 0; i < b.N; i++ {
		if err := e.plugin.Add(args); err != nil {
			b.Fatalf("Add: %v", err)
		}
		if err := e.plugin.Del(args); err != nil {
			b.Fatalf("Del: %v", err)
		}
	}
}

// BenchmarkPluginStatus runs STATUS as containerd 2 does every 5 s on
// every node: config parsing, the cluster network's plan and its STATUS
// (the delegate binary faked).
func BenchmarkPluginStatus(b *testing.B) {
	e, args := benchEnv(b, "")
	for i := 0; i < b.N; i++ {
		if err := e.plugin.Status(args); err != nil {
			b.Fatalf("Status: %v", err)
		}
	}
}

// benchEnv is the plugin at cniVersion 1.1.0 with a quiet fake exec and
// its output discarded, and the arguments of a call for containerID ("":
// none, as STATUS); the timer starts after it.
func benchEnv(b *testing.B, containerID string) (*env, *skel.CmdArgs) {
	b.Helper()
	e := newEnv(b, "1.1.0")
	e.exec.Quiet = true
	e.plugin.Stdout = io.Discard
	args := e.args(b, containerID, nil)
	b.ReportAllocs()
	b.ResetTimer()
	return e, args
}
