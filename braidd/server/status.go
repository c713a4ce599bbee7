package server

import (
	"context"
	"crypto/sha256"
	"fmt"

	"github.com/braid-cni/braid/wire"
)

// status answers STATUS: the node's network health, which containerd 2
// asks for each time the kubelet polls the runtime (every 5 s) and which
// the kubelet turns into the node's NetworkReady. It never waits for a
// slot of the concurrency bound: a burst of ADDs holding every slot must
// not make a node that can attach pods look unready. Calls with the same
// config that arrive while one is asking the cluster network share its
// answer, so the cost stays one delegate STATUS however many callers ask.
// Each caller still stops waiting when its own ctx ends; the shared call
// runs under the verb's deadline, not a caller's.
func (s *Server) status(ctx context.Context, req *wire.Request) (*wire.Response, string) {
	key := fmt.Sprintf("%x", sha256.Sum256(req.Stdin))
	ch := s.statuses.DoChan(key, func() (any, error) {
		ctx := context.WithoutCancel(ctx)
		s.metrics.inFlight.Inc()
		defer s.metrics.inFlight.Dec()
		_, err := s.call(ctx, req)
		return nil, err
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return failed(asCNIError(r.Err))
		}
		return &wire.Response{}, resultOK
	case <-ctx.Done():
		return nil, resultCanceled
	}
}
