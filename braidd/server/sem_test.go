package server

import (
	"context"
	"errors"
	"testing"
)

// acquireAsync starts an Acquire and returns the channel its result comes on.
func acquireAsync(ctx context.Context, s *prioritySem, high bool) <-chan error {
	got := make(chan error, 1)
	go func() { got <- s.Acquire(ctx, high) }()
	return got
}

func admitted(ch <-chan error) bool {
	select {
	case err := <-ch:
		return err == nil
	default:
		return false
	}
}

// TestPrioritySemOrder: with every slot taken, an ADD queued before a DEL
// still gets its slot after the DEL.
func TestPrioritySemOrder(t *testing.T) {
	const slots = 2
	s := newPrioritySem(slots)
	ctx := context.Background()
	for i := 0; i < slots; i++ {
		if err := s.Acquire(ctx, false); err != nil {
			t.Fatal(err)
		}
	}
	add := acquireAsync(ctx, s, false)
	eventually(t, "ADD waits", func() bool { return s.waiting() == 1 })
	del := acquireAsync(ctx, s, true)
	eventually(t, "DEL waits", func() bool { return s.waiting() == 2 })

	s.Release()
	if err := <-del; err != nil {
		t.Fatalf("DEL: %v", err)
	}
	if admitted(add) {
		t.Fatal("ADD admitted before the DEL queued after it")
	}
	if got := s.waiting(); got != 1 {
		t.Errorf("waiting = %d after one release, want 1 (the ADD)", got)
	}
	s.Release()
	if err := <-add; err != nil {
		t.Fatalf("ADD: %v", err)
	}
}

// TestPrioritySemFIFO: callers of one priority are admitted in arrival order.
func TestPrioritySemFIFO(t *testing.T) {
	for _, high := range []bool{false, true} {
		s := newPrioritySem(1)
		ctx := context.Background()
		if err := s.Acquire(ctx, high); err != nil {
			t.Fatal(err)
		}
		first := acquireAsync(ctx, s, high)
		eventually(t, "first waits", func() bool { return s.waiting() == 1 })
		second := acquireAsync(ctx, s, high)
		eventually(t, "second waits", func() bool { return s.waiting() == 2 })
		s.Release()
		if err := <-first; err != nil {
			t.Fatalf("high=%v first: %v", high, err)
		}
		if admitted(second) {
			t.Fatalf("high=%v: second admitted with one slot held by first", high)
		}
		s.Release()
		if err := <-second; err != nil {
			t.Fatalf("high=%v second: %v", high, err)
		}
	}
}

// TestPrioritySemCancel: a caller whose context ends stops waiting, holds
// nothing, and its place does not swallow a later release.
func TestPrioritySemCancel(t *testing.T) {
	s := newPrioritySem(1)
	if err := s.Acquire(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	gone := acquireAsync(ctx, s, true)
	eventually(t, "DEL waits", func() bool { return s.waiting() == 1 })
	cancel()
	if err := <-gone; !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled Acquire = %v, want context.Canceled", err)
	}
	if got := s.waiting(); got != 0 {
		t.Errorf("waiting = %d after cancel, want 0", got)
	}
	s.Release()
	if err := s.Acquire(context.Background(), false); err != nil {
		t.Fatalf("Acquire after release: %v", err)
	}
	s.mu.Lock()
	free := s.free
	s.mu.Unlock()
	if free != 0 {
		t.Errorf("free = %d with the only slot held, want 0", free)
	}
}
