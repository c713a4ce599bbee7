package framework

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// RequireTools skips the test when etcd or kube-apiserver is missing, or
// fails it when the environment variable CI is true: CI must run everything.
func RequireTools(t testing.TB) {
	t.Helper()
	if _, err := (Options{}).Resolve(); err != nil {
		if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
			t.Fatalf("control plane binaries missing with CI=true: %v", err)
		}
		t.Skipf("control plane binaries missing (run `make tools`): %v", err)
	}
}

// StartForTest calls RequireTools, starts a control plane in a temporary
// directory and stops it when the test ends. If the test failed, the end of
// the API server's log is added to the test output first.
func StartForTest(t testing.TB) *ControlPlane {
	t.Helper()
	RequireTools(t)
	opts := Options{WorkDir: t.TempDir()}
	if testing.Verbose() {
		opts.Log = os.Stderr
	}
	cp, err := StartControlPlane(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("last lines of apiserver.log:\n%s", tailFile(filepath.Join(opts.WorkDir, "apiserver.log"), 30))
		}
		cp.Stop()
	})
	return cp
}

// RequireNodeTools skips the test unless it runs as root, and skips it when
// a binary of the control plane (with controllers) or of the node is
// missing, or fails it then when the environment variable CI is true.
func RequireNodeTools(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("a node needs root")
	}
	_, cpErr := (Options{Controllers: true}).Resolve()
	_, nodeErr := (NodeOptions{}).Resolve()
	if err := errors.Join(cpErr, nodeErr); err != nil {
		if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
			t.Fatalf("node binaries missing with CI=true: %v", err)
		}
		t.Skipf("node binaries missing (run `make tools`): %v", err)
	}
}

// StartClusterForTest calls RequireNodeTools, starts a control plane with
// controllers and a node, each in a temporary directory unless
// nodeOpts.WorkDir is set, and stops both when the test ends, the node
// first. If the test failed, the end of the logs is added to the test output
// first. In verbose mode the framework's messages go to stderr unless
// nodeOpts.Log is set.
func StartClusterForTest(t testing.TB, nodeOpts NodeOptions) (*ControlPlane, *Node) {
	t.Helper()
	RequireNodeTools(t)
	opts := Options{WorkDir: t.TempDir(), Controllers: true}
	if testing.Verbose() {
		opts.Log = os.Stderr
		if nodeOpts.Log == nil {
			nodeOpts.Log = os.Stderr
		}
	}
	start := time.Now()
	cp, err := StartControlPlane(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, name := range []string{"apiserver.log", "controller-manager.log", "scheduler.log"} {
				t.Logf("last lines of %s:\n%s", name, tailFile(filepath.Join(opts.WorkDir, name), 20))
			}
		}
		cp.Stop()
	})
	t.Logf("control plane with controllers ready in %v", time.Since(start).Round(time.Millisecond))
	if nodeOpts.WorkDir == "" {
		nodeOpts.WorkDir = t.TempDir()
	}
	start = time.Now()
	node, err := StartNode(t.Context(), cp, nodeOpts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("node logs:\n%s", node.Logs(40))
		}
		node.Stop()
	})
	t.Logf("node %s ready in %v (containerd and kubelet)", NodeName, time.Since(start).Round(time.Millisecond))
	return cp, node
}
