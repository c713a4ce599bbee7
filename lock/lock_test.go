package lock

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestLockExcludes(t *testing.T) {
	d := Dir(t.TempDir())
	ctx := context.Background()
	var inside, most atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				h, err := d.Lock(ctx, "c1")
				if err != nil {
					t.Error(err)
					return
				}
				n := inside.Add(1)
				if n > most.Load() {
					most.Store(n)
				}
				time.Sleep(100 * time.Microsecond)
				inside.Add(-1)
				if n%2 == 0 {
					h.Remove() // removal must not let two in
				} else {
					h.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if most.Load() != 1 {
		t.Errorf("%d holders at once, want 1", most.Load())
	}
}

func TestLockPerContainer(t *testing.T) {
	d := Dir(t.TempDir())
	ctx := context.Background()
	a, err := d.Lock(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Unlock()
	short, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	b, err := d.Lock(short, "b")
	if err != nil {
		t.Fatalf("another container's lock: %v", err)
	}
	b.Unlock()
}

func TestLockWaitsUntilContextEnds(t *testing.T) {
	d := Dir(t.TempDir())
	h, err := d.Lock(context.Background(), "c1")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := d.Lock(ctx, "c1"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Lock while held = %v, want the deadline", err)
	}
	got := make(chan error, 1)
	go func() {
		h2, err := d.Lock(context.Background(), "c1")
		if err == nil {
			h2.Unlock()
		}
		got <- err
	}()
	select {
	case err := <-got:
		t.Fatalf("second Lock returned %v while the first holds it", err)
	case <-time.After(20 * time.Millisecond):
	}
	h.Remove()
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(string(d), "c1")); err != nil {
		t.Errorf("the waiter's lock file: %v", err)
	}
}

// TestLockAcrossProcesses: a lock held by another process (flock(1), as a
// second braid would) excludes this one until that process lets go.
func TestLockAcrossProcesses(t *testing.T) {
	d := Dir(t.TempDir())
	if err := os.MkdirAll(string(d), 0o700); err != nil {
		t.Fatal(err)
	}
	release := filepath.Join(t.TempDir(), "release")
	cmd := exec.Command("flock", filepath.Join(string(d), "c1"), "sh", "-c",
		`echo locked; while [ ! -e "$0" ]; do sleep 0.01; done`, release)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("flock(1), from util-linux: %v", err)
	}
	defer func() { _ = cmd.Wait() }()
	if _, err := out.Read(make([]byte, 7)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := d.Lock(ctx, "c1"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lock while another process holds it = %v, want the deadline", err)
	}
	if err := os.WriteFile(release, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	h, err := d.Lock(context.Background(), "c1")
	if err != nil {
		t.Fatal(err)
	}
	h.Unlock()
}

func TestLockBadIDs(t *testing.T) {
	d := Dir(t.TempDir())
	for _, id := range []string{"", ".hidden", "a/b", "../x", string(make([]byte, 256))} {
		if _, err := d.Lock(context.Background(), id); err == nil {
			t.Errorf("Lock(%q) = nil error", id)
		}
	}
}
