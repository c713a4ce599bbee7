// Package lock runs one of braid's verbs per container at a time: a file
// lock per container ID under braid's cniDir, so that the thin plugin,
// braidd and the shim's DEL fallback exclude each other, whether they run
// in one process or in several.
package lock

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Dir holds the lock files, one per container ID.
type Dir string

// ForCNIDir is the lock directory of braid's cniDir. The journal lists
// regular files only, so it never takes the directory for an entry.
func ForCNIDir(cniDir string) Dir { return Dir(filepath.Join(cniDir, "locks")) }

// Poll bounds how long a waiter sleeps between tries: a lock is released
// by closing its file, which wakes nobody.
const (
	pollFirst = 2 * time.Millisecond
	pollMax   = 50 * time.Millisecond
)

// Held is a lock held on one container.
type Held struct {
	f    *os.File
	path string
}

// Lock waits until it holds containerID's lock, or ctx ends (ctx's error
// then, wrapped).
func (d Dir) Lock(ctx context.Context, containerID string) (*Held, error) {
	path, err := d.path(containerID)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(string(d), 0o700); err != nil {
		return nil, fmt.Errorf("lock container %s: %w", containerID, err)
	}
	wait := pollFirst
	for {
		h, err := tryLock(path)
		if err != nil {
			return nil, fmt.Errorf("lock container %s: %w", containerID, err)
		}
		if h != nil {
			return h, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("lock container %s: another verb of this container is still running: %w", containerID, ctx.Err())
		case <-time.After(wait):
		}
		wait = min(2*wait, pollMax)
	}
}

// tryLock takes the lock at path if it is free: nil, nil when it is not.
func tryLock(path string) (*Held, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, nil
		}
		return nil, fmt.Errorf("flock %s: %w", path, err)
	}
	// The holder before us may have removed the file after we opened it:
	// our lock is then on a file nobody else will find. Start over.
	held, err := sameFile(f, path)
	if err != nil || !held {
		_ = f.Close()
		return nil, err
	}
	return &Held{f: f, path: path}, nil
}

func sameFile(f *os.File, path string) (bool, error) {
	open, err := f.Stat()
	if err != nil {
		return false, err
	}
	named, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return os.SameFile(open, named), nil
}

// Unlock releases the lock.
func (h *Held) Unlock() {
	_ = h.f.Close()
}

// Remove removes the lock file and releases the lock: for a container
// braid is done with (its DEL finished). A waiter that opened the old file
// notices and takes a new one.
func (h *Held) Remove() {
	_ = os.Remove(h.path)
	h.Unlock()
}

func (d Dir) path(containerID string) (string, error) {
	if d == "" {
		return "", fmt.Errorf("lock container %s: no lock directory", containerID)
	}
	if containerID == "" || strings.HasPrefix(containerID, ".") || strings.ContainsAny(containerID, "/\x00") || len(containerID) > 255 {
		return "", fmt.Errorf("lock container %q: not a usable container ID", containerID)
	}
	return filepath.Join(string(d), containerID), nil
}
