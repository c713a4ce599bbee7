package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/skel"

	"github.com/braid-cni/braid/attacher"
	"github.com/braid-cni/braid/internal/testutil"
	"github.com/braid-cni/braid/netconf"
	"github.com/braid-cni/braid/wire"
)

// env is a daemon's plugin on temp dirs with a fake exec, and a config
// that names the daemon's socket dir, as the shim's does.
type env struct {
	exec      *testutil.Exec
	settings  func() (*netconf.NetConf, error)
	core      attacher.Options // each call's core: the fake exec
	timeout   time.Duration
	socketDir string
	cniDir    string // the daemon's journal
	stdin     []byte
}

func newEnv(t testing.TB) *env {
	t.Helper()
	dir := t.TempDir()
	cluster := filepath.Join(dir, "cluster.conflist")
	const conflist = `{"cniVersion":"1.0.0","name":"podnet","plugins":[{"type":"ptp"}]}`
	if err := os.WriteFile(cluster, []byte(conflist), 0o600); err != nil {
		t.Fatal(err)
	}
	e := &env{exec: testutil.NewExec(), socketDir: filepath.Join(dir, "run", "braid"), cniDir: filepath.Join(dir, "cni")}
	// braid's settings are the daemon's; the shim's config names only the
	// socket, as multus-shim's does.
	settings, err := netconf.ParseDaemon(fmt.Appendf(nil, `{"clusterNetwork":%q,"cniDir":%q,"confDir":%q,"logToStderr":false}`,
		cluster, e.cniDir, filepath.Join(dir, "net.d")), func(string) string { return "" }, func() (string, error) { return "n1", nil })
	if err != nil {
		t.Fatal(err)
	}
	stdin, err := json.Marshal(map[string]any{
		"cniVersion": "1.0.0", "name": "braid", "type": "braid-shim",
		"daemonSocketDir": e.socketDir,
	})
	if err != nil {
		t.Fatal(err)
	}
	e.stdin = stdin
	e.settings = func() (*netconf.NetConf, error) { return &settings.NetConf, nil }
	e.core = attacher.Options{Exec: e.exec}
	e.timeout = time.Minute
	return e
}

// direct runs a verb through the core in this process, as the daemon does
// but with no server in between, and returns what it printed.
func (e *env) direct(t *testing.T, command string, args *skel.CmdArgs) string {
	t.Helper()
	settings, err := e.settings()
	if err != nil {
		t.Fatal(err)
	}
	conf, err := settings.ForCaller(args.StdinData)
	if err != nil {
		t.Fatal(err)
	}
	req, err := attacher.NewRequest(conf, args.ContainerID, args.Netns, args.IfName, args.Args)
	if err != nil {
		t.Fatal(err)
	}
	res, err := attacher.New(conf, e.core).Run(context.Background(), command, req)
	if err != nil {
		t.Fatalf("direct %s: %v", command, err)
	}
	var out bytes.Buffer
	if res != nil {
		if err := res.PrintTo(&out); err != nil {
			t.Fatal(err)
		}
	}
	return out.String()
}

func (e *env) args(id string) *skel.CmdArgs {
	return &skel.CmdArgs{
		ContainerID: id,
		Netns:       "/var/run/netns/" + id,
		IfName:      "eth0",
		Args:        "IgnoreUnknown=1;K8S_POD_NAMESPACE=ns1;K8S_POD_NAME=web;K8S_POD_UID=uid-1",
		Path:        "/opt/cni/bin",
		StdinData:   e.stdin,
	}
}

func (e *env) sock() string { return wire.SocketPath(e.socketDir) }

// serving is a Serve running until the test ends.
type serving struct {
	stop func()        // ends Serve's ctx
	done chan struct{} // closed when Serve returned
	err  error         // what it returned, once done
}

// serve runs s on the env's socket and waits until it answers.
func (e *env) serve(t testing.TB, s *Server) *serving {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	sv := &serving{stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(sv.done)
		sv.err = s.Serve(ctx, e.socketDir)
	}()
	t.Cleanup(func() {
		cancel()
		<-sv.done
	})
	eventually(t, "the daemon answers", func() bool {
		resp, err := socketClient(e.sock()).Get("http://braid/healthz")
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return sv
}

// socketClient is an HTTP client for the daemon's socket.
func socketClient(sock string) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
		DisableKeepAlives: true,
	}}
}

// eventually waits for cond, failing the test if it never holds. It waits
// for a state, not for a time: the bound only keeps a broken test from
// hanging.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting until %s", what)
		}
	}
}

func jsonDecode(r io.Reader, v any) error { return json.NewDecoder(r).Decode(v) }
