package framework

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
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
