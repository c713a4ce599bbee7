package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"

	"github.com/braid-cni/braid/plugin"
	"github.com/braid-cni/braid/shim"
)

const (
	// maxRequestBytes bounds a request: the runtime's config with its
	// inline delegates and runtimeConfig.
	maxRequestBytes = 16 << 20
	// notSynced starts the answer to ADD and STATUS while caches are
	// unsynced.
	notSynced = "braid daemon: caches not synced yet"
)

// verbFor returns the plugin verb of a CNI_COMMAND.
func verbFor(command string) (func(*plugin.Plugin, *skel.CmdArgs) error, bool) {
	switch command {
	case "ADD":
		return (*plugin.Plugin).Add, true
	case "DEL":
		return (*plugin.Plugin).Del, true
	case "CHECK":
		return (*plugin.Plugin).Check, true
	case "STATUS":
		return (*plugin.Plugin).Status, true
	case "GC":
		return (*plugin.Plugin).GC, true
	default:
		return nil, false
	}
}

// serveCNI answers one shim: 200 with a shim.Response whenever there is
// someone to answer, the verb's CNI error inside it.
func (s *Server) serveCNI(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	var req shim.Request
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRequestBytes)).Decode(&req); err != nil {
		s.log().Warn("undecodable CNI request", "error", err)
		s.answer(w, &shim.Response{Error: types.NewError(types.ErrDecodingFailure, "braid daemon: decode request", err.Error())})
		s.observe("unknown", resultError, start)
		return
	}
	resp, result := s.run(r.Context(), &req)
	verb := req.Command
	if _, ok := verbFor(verb); !ok {
		verb = "unknown"
	}
	if resp != nil {
		s.answer(w, resp)
	}
	s.observe(verb, result, start)
	s.log().Debug("CNI call answered", "verb", req.Command, "container", req.ContainerID, "result", result, "seconds", time.Since(start).Seconds())
}

// run runs the verb of req once admitted. A nil Response means the shim
// went away while waiting.
func (s *Server) run(ctx context.Context, req *shim.Request) (*shim.Response, string) {
	verb, ok := verbFor(req.Command)
	if !ok {
		return failed(types.NewError(types.ErrInvalidEnvironmentVariables, fmt.Sprintf("braid daemon: unknown CNI_COMMAND %q", req.Command), ""))
	}
	if why := s.notReady(); why != "" {
		// DEL, CHECK and GC work from the journal and need no caches.
		switch req.Command {
		case "ADD":
			return failed(types.NewError(types.ErrTryAgainLater, why, ""))
		case "STATUS":
			return failed(types.NewError(shim.CodeNotAvailable, why, ""))
		}
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

	p := *s.Plugin
	var out bytes.Buffer
	p.Stdout, p.Daemon = &out, true
	if err := verb(&p, req.CmdArgs()); err != nil {
		resp, result := failed(asCNIError(err))
		resp.Stdout = out.Bytes()
		return resp, result
	}
	return &shim.Response{Stdout: out.Bytes()}, resultOK
}

func failed(err *types.Error) (*shim.Response, string) {
	return &shim.Response{Error: err}, resultError
}

// asCNIError turns a verb's error into what skel would print for it.
func asCNIError(err error) *types.Error {
	var te *types.Error
	if errors.As(err, &te) {
		return te
	}
	return types.NewError(types.ErrInternal, err.Error(), "")
}

func (s *Server) answer(w http.ResponseWriter, resp *shim.Response) {
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(resp); err != nil {
		s.log().Warn("cannot answer the shim", "error", err)
	}
}

func (s *Server) observe(verb, result string, start time.Time) {
	s.metrics.requests.WithLabelValues(verb, result).Inc()
	s.metrics.duration.WithLabelValues(verb, result).Observe(time.Since(start).Seconds())
}
