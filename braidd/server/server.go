package server

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/singleflight"

	"github.com/braid-cni/braid/attacher"
	"github.com/braid-cni/braid/netconf"
	"github.com/braid-cni/braid/wire"
)

const (
	// shutdownMargin is added to the verb timeout when waiting for
	// in-flight calls at shutdown: a DEL may clean up past its deadline.
	shutdownMargin = 30 * time.Second
	// readHeaderTimeout bounds a shim that connects and sends nothing.
	readHeaderTimeout = 10 * time.Second
)

// Server answers the shim's CNI calls. Set the fields, then call Serve; do
// not copy a Server once used.
type Server struct {
	// Settings give braid's settings for each call (braidd's config, with
	// the cluster network autoconfig wraps now): a call's config gives
	// only the runtime's keys (netconf.NetConf.ForCaller).
	Settings func() (*netconf.NetConf, error)
	// Core is what the core of every call is given besides the settings:
	// the informer-backed API, the delegate metrics, parallel attach and
	// braidd's log.
	Core attacher.Options
	// Timeout is the deadline of one verb.
	Timeout time.Duration
	// MaxConcurrent bounds the verbs run at once; 0 means
	// netconf.DefaultMaxConcurrent(). A freed slot goes to a waiting DEL
	// first.
	MaxConcurrent int
	// Unsynced names the caches that have not synced yet; until none is
	// left ADD answers code 11 naming them and /readyz fails. nil means
	// always ready.
	Unsynced func() []string
	// Log is the daemon's own log; nil discards. Each verb logs where its
	// config says, as in the thin plugin.
	Log *slog.Logger
	// Registry receives the daemon's metrics and is what /metrics serves;
	// nil: no metrics endpoint.
	Registry *prometheus.Registry
	// EnablePprof adds /debug/pprof/ to OpsHandler.
	EnablePprof bool

	once  sync.Once
	adds  adds
	syncs adds // hot-plug's, by container ID, also cancelled by a DEL
	sem   *prioritySem
	// statuses coalesces STATUS calls by config (see status).
	statuses singleflight.Group
	metrics  *metrics
	initErr  error
}

func (s *Server) init() {
	s.once.Do(func() {
		n := s.MaxConcurrent
		if n <= 0 {
			n = netconf.DefaultMaxConcurrent()
		}
		s.sem = newPrioritySem(n)
		var reg prometheus.Registerer
		if s.Registry != nil {
			reg = s.Registry
		}
		s.metrics, s.initErr = newMetrics(reg)
	})
}

func (s *Server) log() *slog.Logger {
	if s.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Log
}

// notReady returns why the daemon cannot serve ADD yet, or "" once it can.
func (s *Server) notReady() string {
	if s.Unsynced == nil {
		return ""
	}
	if pending := s.Unsynced(); len(pending) > 0 {
		return notSynced + ": " + strings.Join(pending, ", ")
	}
	return ""
}

// Serve answers CNI calls on <socketDir>/braid.sock until ctx ends, then
// stops accepting and lets the calls in flight finish. The directory is
// made (or made again) mode 0700 and the socket 0600: only root reaches
// the daemon. A stale socket is replaced; a live one is an error.
func (s *Server) Serve(ctx context.Context, socketDir string) error {
	if s.Settings == nil {
		return errors.New("braid daemon: no settings to run the verbs with")
	}
	s.init()
	if s.initErr != nil {
		return s.initErr
	}
	ln, err := listen(ctx, socketDir)
	if err != nil {
		return err
	}
	sock := ln.Addr().String()
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: readHeaderTimeout,
		ErrorLog:          slog.NewLogLogger(s.log().Handler(), slog.LevelWarn),
	}
	m := newMux(s, ln)
	go m.run()
	done := make(chan error, 1)
	go func() { done <- srv.Serve(m) }()
	s.log().Info("serving CNI calls", "socket", sock, "maxConcurrent", s.sem.size)
	select {
	case err := <-done:
		return fmt.Errorf("serve CNI calls on %s: %w", sock, err)
	case <-ctx.Done():
	}
	grace := s.Timeout + shutdownMargin
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	err = errors.Join(srv.Shutdown(sctx), m.wait(sctx))
	if err != nil {
		_ = srv.Close()
		err = fmt.Errorf("shut down CNI server on %s after %s: %w", sock, grace, err)
	}
	<-done
	s.log().Info("stopped serving CNI calls", "socket", sock)
	return err
}

// listen prepares socketDir and listens on the socket in it.
func listen(ctx context.Context, socketDir string) (net.Listener, error) {
	if err := os.MkdirAll(socketDir, 0o700); err != nil {
		return nil, fmt.Errorf("create socket dir %s: %w", socketDir, err)
	}
	if err := os.Chmod(socketDir, 0o700); err != nil {
		return nil, fmt.Errorf("chmod socket dir %s: %w", socketDir, err)
	}
	sock := wire.SocketPath(socketDir)
	if err := removeStale(ctx, sock); err != nil {
		return nil, err
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "unix", sock)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", sock, err)
	}
	// The directory is 0700, so nobody else could use the socket before
	// this either.
	if err := os.Chmod(sock, 0o600); err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("chmod socket %s: %w", sock, err)
	}
	return ln, nil
}

// removeStale removes a socket left by a daemon that is gone, and refuses
// to take over one that still answers.
func removeStale(ctx context.Context, sock string) error {
	d := net.Dialer{Timeout: time.Second}
	if conn, err := d.DialContext(ctx, "unix", sock); err == nil {
		_ = conn.Close()
		return fmt.Errorf("socket %s: another braid daemon answers on it", sock)
	}
	if err := os.Remove(sock); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove stale socket %s: %w", sock, err)
	}
	return nil
}

// Handler serves the shim: POST /cni, plus /healthz and /readyz.
func (s *Server) Handler() http.Handler {
	s.init()
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+wire.Path, s.serveCNI)
	s.probes(mux)
	return mux
}

// OpsHandler serves operators on the metrics address: /healthz, /readyz,
// /metrics when Registry is set, /debug/pprof/ when EnablePprof is.
func (s *Server) OpsHandler() http.Handler {
	s.init()
	mux := http.NewServeMux()
	s.probes(mux)
	if s.Registry != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(s.Registry, promhttp.HandlerOpts{}))
	}
	if s.EnablePprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// probes adds /healthz (ok whenever it answers) and /readyz (503 until the
// caches are synced).
func (s *Server) probes(mux *http.ServeMux) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if why := s.notReady(); why != "" {
			http.Error(w, why, http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
}
