package autoconf

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestRunCreatesDir: Run on a CNI config directory that does not exist
// yet creates it (and its parents) and keeps running, and picks up a
// primary written there later; when the directory is removed it creates
// and watches it again.
func TestRunCreatesDir(t *testing.T) {
	w := writer(t)
	w.Dir = filepath.Join(w.Dir, "etc", "cni", "net.d")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	isDir := func() bool {
		info, err := os.Stat(w.Dir)
		return err == nil && info.IsDir()
	}
	eventually(t, "the CNI config directory created", isDir)
	select {
	case err := <-done:
		t.Fatalf("Run ended with a new directory: %v", err)
	default:
	}
	write(t, w.Dir, flannelFile, flannel)
	eventually(t, "braid config for flannel written later", func() bool {
		return wrapped(w) == "/etc/cni/net.d/"+flannelFile
	})

	if err := os.RemoveAll(w.Dir); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the removed CNI config directory created again", isDir)
	// Let a sync prompted by the removal pass, so that only the new watch
	// can see the next primary.
	time.Sleep(3 * settle)
	write(t, w.Dir, "05-calico.conflist", calico)
	eventually(t, "braid config for calico written into the new directory", func() bool {
		return wrapped(w) == "/etc/cni/net.d/05-calico.conflist"
	})
}
