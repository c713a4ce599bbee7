package testutil

import (
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/braid-cni/braid/wire"
)

// ServeUnix serves h on the unix socket sock until the test ends: a fake
// braidd for the shim and wire tests.
func ServeUnix(t testing.TB, sock string, h http.Handler) {
	t.Helper()
	ln := ListenUnix(t, sock)
	srv := httptest.NewUnstartedServer(h)
	_ = srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
}

// SocketDir returns a fresh directory, mode 0700, removed when the test ends,
// whose path is short enough for a unix socket (at most 107 bytes): the
// directory t.TempDir gives can be too long.
func SocketDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "braid")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	return dir
}

// ListenUnix listens on the unix socket path until the test ends.
func ListenUnix(t testing.TB, path string) net.Listener {
	t.Helper()
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	return ln
}

// ServeWire answers framed calls (package wire) on the unix socket sock with
// answer until the test ends: a fake braidd for the shim's tests. A nil
// answer hangs up without one.
func ServeWire(t testing.TB, sock string, answer func(*wire.Request) *wire.Response) {
	t.Helper()
	ln := ListenUnix(t, sock)
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				req, err := wire.ReadRequest(conn, wire.MaxResponseBytes)
				if err != nil {
					return
				}
				if resp := answer(req); resp != nil {
					_ = wire.WriteResponse(conn, resp)
				}
			}()
		}
	}()
}
