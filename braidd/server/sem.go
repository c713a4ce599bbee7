package server

import (
	"context"
	"sync"
)

// prioritySem admits at most n holders at once. A freed slot goes to the
// longest-waiting high-priority caller (DEL) before any low-priority one
// (ADD and the rest): tearing pods down frees what new pods need.
type prioritySem struct {
	size int // slots in all
	mu   sync.Mutex
	free int
	// high and low are FIFO queues; a waiter's channel is closed when it is
	// handed a slot.
	high, low []chan struct{}
}

func newPrioritySem(n int) *prioritySem {
	return &prioritySem{size: n, free: n}
}

// Acquire waits for a slot until ctx ends. On error the caller holds no
// slot.
func (s *prioritySem) Acquire(ctx context.Context, high bool) error {
	s.mu.Lock()
	if s.free > 0 {
		// Slots are handed to waiters as they free, so a free slot means
		// nobody waits.
		s.free--
		s.mu.Unlock()
		return nil
	}
	w := make(chan struct{})
	if high {
		s.high = append(s.high, w)
	} else {
		s.low = append(s.low, w)
	}
	s.mu.Unlock()
	select {
	case <-w:
		return nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	select {
	case <-w:
		// Handed a slot as ctx ended: pass it on.
		s.mu.Unlock()
		s.Release()
	default:
		s.high = remove(s.high, w)
		s.low = remove(s.low, w)
		s.mu.Unlock()
	}
	return ctx.Err()
}

// Release frees a slot: to the first high-priority waiter, else to the
// first low-priority one, else back to the pool.
func (s *prioritySem) Release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case len(s.high) > 0:
		close(s.high[0])
		s.high = s.high[1:]
	case len(s.low) > 0:
		close(s.low[0])
		s.low = s.low[1:]
	default:
		s.free++
	}
}

// waiting counts the callers waiting for a slot.
func (s *prioritySem) waiting() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.high) + len(s.low)
}

func remove(q []chan struct{}, w chan struct{}) []chan struct{} {
	for i, c := range q {
		if c == w {
			return append(q[:i:i], q[i+1:]...)
		}
	}
	return q
}
