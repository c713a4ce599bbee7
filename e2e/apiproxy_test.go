package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// apiProxy is a TLS reverse proxy in front of the suite's API server for
// one braidd. While held, it passes no byte of a list or watch of pods or
// NADs (a GET of a collection) on to braidd, so objects created meanwhile
// provably cannot reach braidd's caches, while GETs of single objects, its
// live fallbacks, pass.
type apiProxy struct {
	url   string
	caPEM []byte // the proxy's certificate
	gate  gate
}

func newAPIProxy(t *testing.T) *apiProxy {
	t.Helper()
	cfg := shared.cp.BraidConfig()
	target, err := url.Parse(cfg.Host)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(cfg.CAData) {
		t.Fatal("API server CA: no certificate")
	}
	p := &apiProxy{}
	p.gate.init()
	rp := &httputil.ReverseProxy{
		Rewrite:       func(r *httputil.ProxyRequest) { r.SetURL(target) },
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}},
		FlushInterval: -1, // watch events go on at once
		ModifyResponse: func(resp *http.Response) error {
			if held(resp.Request) {
				resp.Body = &gatedBody{ReadCloser: resp.Body, gate: &p.gate, ctx: resp.Request.Context()}
			}
			return nil
		},
	}
	srv := httptest.NewUnstartedServer(rp)
	srv.StartTLS()
	t.Cleanup(func() {
		p.gate.release()
		srv.CloseClientConnections()
		srv.Close()
	})
	p.url = srv.URL
	p.caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	return p
}

// held reports whether r lists or watches pods or NADs.
func held(r *http.Request) bool {
	if r.Method != http.MethodGet {
		return false
	}
	return strings.HasSuffix(r.URL.Path, "/pods") || strings.HasSuffix(r.URL.Path, "/network-attachment-definitions")
}

// hold stops list and watch bytes until release.
func (p *apiProxy) hold() { p.gate.hold() }

// release lets them flow again.
func (p *apiProxy) release() { p.gate.release() }

// gate is open or closed; wait blocks while it is closed.
type gate struct {
	mu   sync.Mutex
	open chan struct{} // closed while the gate is open
}

func (g *gate) init() {
	g.open = make(chan struct{})
	close(g.open)
}

func (g *gate) hold() {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.open:
		g.open = make(chan struct{})
	default: // already held
	}
}

func (g *gate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.open: // already open
	default:
		close(g.open)
	}
}

func (g *gate) wait(ctx context.Context) error {
	g.mu.Lock()
	open := g.open
	g.mu.Unlock()
	select {
	case <-open:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// gatedBody hands on what it read only while the gate is open. It checks
// the gate after each read from the API server returns, so bytes that
// arrive once the gate is held, and the end of the stream, wait.
type gatedBody struct {
	io.ReadCloser
	gate *gate
	ctx  context.Context
}

func (b *gatedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if werr := b.gate.wait(b.ctx); werr != nil {
		return 0, werr
	}
	return n, err
}
