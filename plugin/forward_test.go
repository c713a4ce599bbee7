package plugin

import (
	"net"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"

	"github.com/braid-cni/braid/internal/testutil"
	"github.com/braid-cni/braid/wire"
)

// fakeDaemon answers on <dir>/braid.sock with canned responses by command
// and records every request.
type fakeDaemon struct {
	dir     string
	answers map[string]wire.Response
	mu      sync.Mutex
	reqs    []wire.Request
}

func newFakeDaemon(t *testing.T, answers map[string]wire.Response) *fakeDaemon {
	t.Helper()
	d := &fakeDaemon{dir: t.TempDir(), answers: answers}
	testutil.ServeWire(t, wire.SocketPath(d.dir), d.answer)
	return d
}

func (d *fakeDaemon) answer(req *wire.Request) *wire.Response {
	d.mu.Lock()
	d.reqs = append(d.reqs, *req)
	d.mu.Unlock()
	resp := d.answers[req.Command]
	return &resp
}

func (d *fakeDaemon) requests() []wire.Request {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.reqs)
}

func verbByCommand(command string) func(*Plugin, *skel.CmdArgs) error {
	return map[string]func(*Plugin, *skel.CmdArgs) error{
		"ADD": (*Plugin).Add, "DEL": (*Plugin).Del, "CHECK": (*Plugin).Check,
		"STATUS": (*Plugin).Status, "GC": (*Plugin).GC,
	}[command]
}

// TestForward: with daemonSocketDir every verb goes to the daemon, which
// sees the call as the runtime made it; its output is printed and its CNI
// error returned with the code kept. Nothing runs here.
func TestForward(t *testing.T) {
	const result = `{"cniVersion":"1.0.0","interfaces":[{"name":"eth0"}]}`
	tests := []struct {
		name     string
		command  string
		answer   wire.Response
		wantCode uint // 0: success
	}{
		{"ADD result", "ADD", wire.Response{Stdout: []byte(result)}, 0},
		{"ADD error code kept", "ADD", wire.Response{Error: types.NewError(types.ErrInvalidNetworkConfig, "network ns1/blue (bridge, net1): bad", "details")}, types.ErrInvalidNetworkConfig},
		{"DEL", "DEL", wire.Response{}, 0},
		{"CHECK error", "CHECK", wire.Response{Error: types.NewError(types.ErrTryAgainLater, "later", "")}, types.ErrTryAgainLater},
		{"STATUS", "STATUS", wire.Response{}, 0},
		{"GC", "GC", wire.Response{}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, "1.0.0")
			d := newFakeDaemon(t, map[string]wire.Response{tt.command: tt.answer})
			args := e.args(t, "c1", map[string]any{"daemonSocketDir": d.dir})
			err := verbByCommand(tt.command)(e.plugin, args)
			if tt.wantCode == 0 && err != nil {
				t.Fatalf("%s: %v", tt.command, err)
			}
			if tt.wantCode != 0 {
				if te := testutil.CNIError(t, err); te.Code != tt.wantCode || te.Msg != tt.answer.Error.Msg {
					t.Errorf("%s error = %+v, want %+v", tt.command, te, tt.answer.Error)
				}
			}
			if got := e.stdout.String(); got != string(tt.answer.Stdout) {
				t.Errorf("printed %q, want %q", got, tt.answer.Stdout)
			}
			if got, want := d.requests(), []wire.Request{*wire.NewRequest(tt.command, args)}; !reflect.DeepEqual(got, want) {
				t.Errorf("daemon saw %+v, want %+v", got, want)
			}
			if got := e.exec.Seen(); len(got) != 0 {
				t.Errorf("ran here %q, want nothing", got)
			}
		})
	}
}

// TestForwardDaemonDown: without a daemon, ADD fails at once with code 11
// naming the socket (no socket file, or a stale one nobody listens on),
// STATUS reports the plugin unavailable, and DEL runs here from what it has.
func TestForwardDaemonDown(t *testing.T) {
	sockets := []struct {
		name  string
		setup func(t *testing.T, dir string)
	}{
		{"no socket", func(*testing.T, string) {}},
		{"refused", staleSocket},
	}
	tests := []struct {
		command  string
		wantCode uint // 0: ran here
	}{
		{"ADD", types.ErrTryAgainLater},
		{"CHECK", types.ErrTryAgainLater},
		{"GC", types.ErrTryAgainLater},
		{"STATUS", wire.CodeNotAvailable},
		{"DEL", 0},
	}
	for _, s := range sockets {
		for _, tt := range tests {
			t.Run(s.name+"/"+tt.command, func(t *testing.T) {
				e := newEnv(t, "1.0.0")
				dir := t.TempDir()
				s.setup(t, dir)
				args := e.args(t, "c1", map[string]any{"daemonSocketDir": dir})
				start := time.Now()
				err := verbByCommand(tt.command)(e.plugin, args)
				// Not a measure of speed: only that it did not wait out the
				// verb's deadline.
				if took := time.Since(start); took > e.plugin.Timeout/2 {
					t.Errorf("%s took %s with the daemon down", tt.command, took)
				}
				if tt.wantCode == 0 {
					if err != nil {
						t.Fatalf("%s: %v", tt.command, err)
					}
					if got, want := e.exec.Seen(), []string{"DEL ptp c1 eth0"}; !slices.Equal(got, want) {
						t.Errorf("ran here %q, want %q", got, want)
					}
					return
				}
				te := testutil.CNIError(t, err)
				sock := filepath.Join(dir, wire.SocketName)
				if te.Code != tt.wantCode || !strings.Contains(te.Msg, sock) {
					t.Errorf("%s error = %+v, want code %d naming %s", tt.command, te, tt.wantCode, sock)
				}
				if got := e.exec.Seen(); len(got) != 0 {
					t.Errorf("ran here %q, want nothing", got)
				}
			})
		}
	}
}

// staleSocket leaves a socket file in dir that nobody listens on, as a
// crashed daemon does.
func staleSocket(t *testing.T, dir string) {
	t.Helper()
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: wire.SocketPath(dir), Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
}
