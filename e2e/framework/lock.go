package framework

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// hostLockName is the file a node holds an exclusive flock on while it runs:
// a node changes host-wide state (the CNI directories, /var/lib/kubelet, the
// name NodeName), and `go test ./e2e/...` runs test binaries in parallel.
// The kernel drops the lock when its holder dies; the file itself stays.
const hostLockName = "braid-e2e-node.lock"

// lockHost waits until no other node runs on this host, in this process or
// another, and returns the locked file; closing it unlocks. ctx bounds the
// wait.
func lockHost(ctx context.Context, log *slog.Logger) (*os.File, error) {
	path := filepath.Join(os.TempDir(), hostLockName)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock host: %w", err)
	}
	start, logged := time.Now(), false
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			if waited := time.Since(start); waited > time.Second {
				log.Info("another node on this host stopped", "waited", waited.Round(time.Millisecond))
			}
			return f, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock host %s: %w", path, err)
		}
		if !logged {
			log.Info("waiting for another node on this host to stop", "lock", path)
			logged = true
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("wait for another node on this host to stop (lock %s): %w", path, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}
