package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/braid-cni/braid/attacher"
	"github.com/braid-cni/braid/caller"
	"github.com/braid-cni/braid/plan"
	"github.com/braid-cni/braid/wire"
)

const (
	// maxRequestBytes bounds a request: the runtime's config with its
	// inline delegates and runtimeConfig.
	maxRequestBytes = 16 << 20
	// notSynced starts the answer to ADD and STATUS while caches are
	// unsynced.
	notSynced = "braid daemon: caches not synced yet"
)

// known reports whether command is a CNI_COMMAND the daemon serves.
func known(command string) bool {
	switch command {
	case "ADD", "DEL", "CHECK", "STATUS", "GC":
		return true
	}
	return false
}

// serveCNI answers a shim that speaks HTTP (before the framed protocol): 200
// with a wire.Response whenever there is someone to answer, the verb's CNI
// error inside it.
func (s *Server) serveCNI(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	var req wire.Request
	body := http.MaxBytesReader(w, r.Body, maxRequestBytes)
	err := json.NewDecoder(body).Decode(&req)
	if err == nil {
		// The server watches the connection, and cancels r.Context() when
		// the shim goes away, only once the body is read to its end.
		_, err = io.Copy(io.Discard, body)
	}
	if resp := s.handle(r.Context(), &req, err, start); resp != nil {
		w.Header().Set("Content-Type", "application/json")
		if err := json.NewEncoder(w).Encode(resp); err != nil {
			s.log().Warn("cannot answer the shim", "error", err)
		}
	}
}

// handle runs a decoded request (decodeErr: it could not be decoded) under
// ctx, which ends when the shim goes away, counts it in the metrics and
// returns the answer; nil when the shim went away while waiting.
func (s *Server) handle(ctx context.Context, req *wire.Request, decodeErr error, start time.Time) *wire.Response {
	if decodeErr != nil {
		s.log().Warn("undecodable CNI request", "error", decodeErr)
		s.observe("unknown", resultError, start)
		return &wire.Response{Error: types.NewError(types.ErrDecodingFailure, "braid daemon: decode request", decodeErr.Error())}
	}
	resp, result := s.run(ctx, req)
	verb := req.Command
	if !known(verb) {
		verb = "unknown"
	}
	s.observe(verb, result, start)
	s.log().Debug("CNI call answered", "verb", req.Command, "container", req.ContainerID, "result", result, "seconds", time.Since(start).Seconds())
	return resp
}

// run runs the verb of req once admitted, under ctx: the shim's
// connection, so a runtime that gives up cancels the verb (an ADD rolls
// back). A nil Response means the shim went away while waiting.
func (s *Server) run(ctx context.Context, req *wire.Request) (*wire.Response, string) {
	if !known(req.Command) {
		return failed(types.NewError(types.ErrInvalidEnvironmentVariables, fmt.Sprintf("braid daemon: unknown CNI_COMMAND %q", req.Command), ""))
	}
	if req.Caller != "" {
		return failed(caller.Refusal(req.Caller))
	}
	if err := req.Validate(); err != nil {
		return failed(err)
	}
	if why := s.notReady(); why != "" {
		// DEL, CHECK and GC work from the journal and need no caches.
		switch req.Command {
		case "ADD":
			return failed(types.NewError(types.ErrTryAgainLater, why, ""))
		case "STATUS":
			return failed(types.NewError(wire.CodeNotAvailable, why, ""))
		}
	}
	switch req.Command {
	case "STATUS":
		return s.status(ctx, req)
	case "ADD":
		var done func()
		ctx, done = s.adds.start(ctx, req.ContainerID)
		defer done()
	case "DEL":
		// A DEL while the same container's ADD runs: the ADD gives up and
		// rolls back, then the DEL (which waits for the container's lock)
		// finds nothing or the whole plan.
		s.adds.cancel(req.ContainerID)
		s.syncs.cancel(req.ContainerID)
	}
	s.metrics.waiting.Inc()
	err := s.sem.Acquire(ctx, req.Command == "DEL")
	s.metrics.waiting.Dec()
	if err != nil {
		return nil, resultCanceled
	}
	defer s.sem.Release()
	s.metrics.inFlight.Inc()
	defer s.metrics.inFlight.Dec()

	res, err := s.call(ctx, req)
	if err != nil {
		return failed(asCNIError(err))
	}
	var out bytes.Buffer
	if res != nil {
		if err := res.PrintTo(&out); err != nil {
			return failed(asCNIError(err))
		}
	}
	return &wire.Response{Stdout: out.Bytes()}, resultOK
}

// Sync runs hot-plug's verb (attacher.Attacher.Sync) for a container with
// braidd's settings, within the concurrency bound and the verb's deadline,
// registered like an ADD: a DEL of the container cancels it (it then rolls
// back), and the container's lock orders it with the runtime's verbs.
func (s *Server) Sync(ctx context.Context, containerID string) (*plan.Change, error) {
	s.init()
	start := time.Now()
	change, err := s.sync(ctx, containerID)
	result := resultOK
	if err != nil {
		result = resultError
	}
	s.observe(verbHotplug, result, start)
	if change != nil {
		s.metrics.hotplugged.WithLabelValues("add").Add(float64(len(change.Added)))
		s.metrics.hotplugged.WithLabelValues("remove").Add(float64(len(change.Removed)))
	}
	return change, err
}

// verbHotplug labels hot-plug's syncs in the request metrics.
const verbHotplug = "HOTPLUG"

func (s *Server) sync(ctx context.Context, containerID string) (*plan.Change, error) {
	settings, err := s.Settings()
	if err != nil {
		return nil, err
	}
	ctx, done := s.syncs.start(ctx, containerID)
	defer done()
	if err := s.sem.Acquire(ctx, false); err != nil {
		return nil, types.NewError(types.ErrTryAgainLater, "hot-plug of container "+containerID, err.Error())
	}
	defer s.sem.Release()
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	return attacher.New(settings, s.Core).Sync(ctx, attacher.Request{Request: plan.Request{ContainerID: containerID}})
}

// call runs the verb through the core under the verb's deadline: braid's
// settings with the caller's runtime keys, the request from the shim's.
func (s *Server) call(ctx context.Context, req *wire.Request) (types.Result, error) {
	settings, err := s.Settings()
	if err != nil {
		return nil, err
	}
	conf, err := settings.ForCaller(req.Stdin)
	if err != nil {
		return nil, err
	}
	areq, err := attacher.NewRequest(conf, req.ContainerID, req.Netns, req.IfName, req.Args)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	return attacher.New(conf, s.Core).Run(ctx, req.Command, areq)
}

func failed(err *types.Error) (*wire.Response, string) {
	return &wire.Response{Error: err}, resultError
}

// asCNIError turns a verb's error into what skel would print for it.
func asCNIError(err error) *types.Error {
	var te *types.Error
	if errors.As(err, &te) {
		return te
	}
	return types.NewError(types.ErrInternal, err.Error(), "")
}

func (s *Server) observe(verb, result string, start time.Time) {
	s.metrics.requests.WithLabelValues(verb, result).Inc()
	s.metrics.duration.WithLabelValues(verb, result).Observe(time.Since(start).Seconds())
}
