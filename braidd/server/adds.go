package server

import (
	"context"
	"sync"
)

// adds are the ADDs in flight, by container ID, so that a DEL of the same
// container can cancel its ADD instead of waiting for it to finish.
type adds struct {
	mu      sync.Mutex
	running map[string]*runningAdd
}

type runningAdd struct{ cancel context.CancelFunc }

// start registers an ADD of id and returns its context, cancelled by a
// DEL of id, and the func to call when the ADD is over.
func (a *adds) start(ctx context.Context, id string) (context.Context, func()) {
	ctx, cancel := context.WithCancel(ctx)
	r := &runningAdd{cancel: cancel}
	a.mu.Lock()
	if a.running == nil {
		a.running = map[string]*runningAdd{}
	}
	a.running[id] = r
	a.mu.Unlock()
	return ctx, func() {
		cancel()
		a.mu.Lock()
		if a.running[id] == r {
			delete(a.running, id)
		}
		a.mu.Unlock()
	}
}

// cancel cancels the ADD of id in flight, if any.
func (a *adds) cancel(id string) {
	a.mu.Lock()
	r := a.running[id]
	a.mu.Unlock()
	if r != nil {
		r.cancel()
	}
}
