package server

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/braid-cni/braid/wire"
)

// mux takes the connections of the daemon's socket: a framed call (it
// starts with wire.Magic) is answered here; anything else (a braid-shim
// from before the framed protocol posting to /cni, a probe of /healthz)
// goes on to the HTTP server, which accepts from mux as its listener.
type mux struct {
	net.Listener // the socket's: Addr, and Close stops the accepting
	s            *Server
	http         chan net.Conn
	closed       chan struct{}
	closeOnce    sync.Once
	stopped      chan struct{}  // run has returned: no more calls start
	calls        sync.WaitGroup // connections being routed, framed calls in flight
}

func newMux(s *Server, ln net.Listener) *mux {
	return &mux{Listener: ln, s: s, http: make(chan net.Conn), closed: make(chan struct{}), stopped: make(chan struct{})}
}

// run accepts until the socket is closed.
func (m *mux) run() {
	defer close(m.stopped)
	defer m.Close()
	for {
		conn, err := m.Listener.Accept()
		if err != nil {
			return
		}
		m.calls.Add(1)
		go m.route(conn)
	}
}

// route reads as many bytes as the magic has (every HTTP request is longer)
// and answers the call or hands the connection, those bytes first, to the
// HTTP server.
func (m *mux) route(conn net.Conn) {
	framed := false
	defer func() {
		if !framed {
			m.calls.Done()
		}
	}()
	_ = conn.SetReadDeadline(time.Now().Add(readHeaderTimeout))
	head := make([]byte, len(wire.Magic))
	if _, err := io.ReadFull(conn, head); err != nil {
		_ = conn.Close()
		return
	}
	if string(head) == wire.Magic {
		framed = true
		defer m.calls.Done()
		m.s.serveFramed(conn, io.MultiReader(bytes.NewReader(head), conn))
		return
	}
	_ = conn.SetReadDeadline(time.Time{})
	select {
	case m.http <- &prefixed{Conn: conn, r: io.MultiReader(bytes.NewReader(head), conn)}:
	case <-m.closed:
		_ = conn.Close()
	}
}

// Accept hands the HTTP server its connections.
func (m *mux) Accept() (net.Conn, error) {
	select {
	case conn := <-m.http:
		return conn, nil
	case <-m.closed:
		return nil, net.ErrClosed
	}
}

// Close stops accepting; calls in flight go on (wait waits for them).
func (m *mux) Close() error {
	var err error
	m.closeOnce.Do(func() {
		close(m.closed)
		err = m.Listener.Close()
	})
	return err
}

// wait waits, once Close was called, for the framed calls in flight until
// ctx ends.
func (m *mux) wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		<-m.stopped
		m.calls.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return errors.New("framed calls still in flight")
	}
}

// prefixed is a connection whose first bytes were read already.
type prefixed struct {
	net.Conn
	r io.Reader
}

func (c *prefixed) Read(p []byte) (int, error) { return c.r.Read(p) }

// serveFramed answers one framed call read from r (conn's bytes, the magic
// included). The verb runs under a context that ends when the shim closes
// its end, as an HTTP request's does: a runtime that gives up cancels the
// verb (an ADD rolls back).
func (s *Server) serveFramed(conn net.Conn, r io.Reader) {
	defer func() { _ = conn.Close() }()
	start := time.Now()
	req, err := wire.ReadRequest(r, maxRequestBytes)
	_ = conn.SetReadDeadline(time.Time{})
	if req == nil {
		req = &wire.Request{}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		// The shim sends nothing more: a read returns when it hangs up
		// (or when this call closes the connection).
		_, _ = conn.Read(make([]byte, 1))
		cancel()
	}()
	if resp := s.handle(ctx, req, err, start); resp != nil {
		if err := wire.WriteResponse(conn, resp); err != nil {
			s.log().Warn("cannot answer the shim", "container", req.ContainerID, "error", err)
		}
	}
}
