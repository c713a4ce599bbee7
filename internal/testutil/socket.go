package testutil

import (
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
)

// ServeUnix serves h on the unix socket sock until the test ends: a fake
// braidd for the shim and wire tests.
func ServeUnix(t testing.TB, sock string, h http.Handler) {
	t.Helper()
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	_ = srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
}
