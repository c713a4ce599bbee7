package shim

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"

	"github.com/braid-cni/braid/caller"
	"github.com/braid-cni/braid/internal/testutil"
	"github.com/braid-cni/braid/wire"
)

// serve runs answer as the daemon on a socket in a temp dir.
func serve(t *testing.T, answer func(*wire.Request) *wire.Response) string {
	t.Helper()
	sock := wire.SocketPath(t.TempDir())
	testutil.ServeWire(t, sock, answer)
	return sock
}

func shimArgs(socketDir string) *skel.CmdArgs {
	return &skel.CmdArgs{
		ContainerID: "c1", Netns: "/var/run/netns/c1", IfName: "eth0", Args: "K8S_POD_NAME=p",
		Path:      "/opt/cni/bin",
		StdinData: []byte(`{"cniVersion":"1.0.0","name":"braid-net","type":"braid-shim","daemonSocketDir":"` + socketDir + `"}`),
	}
}

// verb returns the shim's function for command.
func verb(p *Plugin, command string) func(*skel.CmdArgs) error {
	f := p.Funcs()
	return map[string]func(*skel.CmdArgs) error{"ADD": f.Add, "DEL": f.Del, "CHECK": f.Check, "STATUS": f.Status, "GC": f.GC}[command]
}

// TestPluginForwards: every verb reaches the daemon under its own
// CNI_COMMAND, the daemon's output is printed and its error code kept.
func TestPluginForwards(t *testing.T) {
	for _, command := range []string{"ADD", "DEL", "CHECK", "STATUS", "GC"} {
		t.Run(command, func(t *testing.T) {
			var got wire.Request
			sock := serve(t, func(r *wire.Request) *wire.Response {
				got = *r
				return &wire.Response{Stdout: []byte("out-" + got.Command), Error: types.NewError(4, "from daemon", "")}
			})
			var out bytes.Buffer
			p := &Plugin{Stdout: &out, Timeout: 5 * time.Second, Local: func(context.Context, *skel.CmdArgs) error {
				t.Error("Local ran although the daemon answered")
				return nil
			}}
			err := verb(p, command)(shimArgs(filepath.Dir(sock)))
			var te *types.Error
			if !errors.As(err, &te) || te.Code != 4 {
				t.Errorf("%s = %v, want the daemon's code 4", command, err)
			}
			if got.Command != command || got.ContainerID != "c1" || got.Args != "K8S_POD_NAME=p" {
				t.Errorf("daemon got %+v", got)
			}
			if out.String() != "out-"+command {
				t.Errorf("printed %q", out.String())
			}
		})
	}
}

// TestPluginDaemonDown: without a daemon ADD, CHECK and GC are to be tried
// again later, STATUS reports the plugin unavailable, all naming the socket;
// only DEL goes to Local.
func TestPluginDaemonDown(t *testing.T) {
	dir := t.TempDir()
	sock := wire.SocketPath(dir)
	for command, wantCode := range map[string]uint{"ADD": types.ErrTryAgainLater, "CHECK": types.ErrTryAgainLater, "GC": types.ErrTryAgainLater, "STATUS": wire.CodeNotAvailable, "DEL": 0} {
		t.Run(command, func(t *testing.T) {
			var local *skel.CmdArgs
			p := &Plugin{Stdout: &bytes.Buffer{}, Timeout: 5 * time.Second, Local: func(_ context.Context, args *skel.CmdArgs) error {
				local = args
				return nil
			}}
			err := verb(p, command)(shimArgs(dir))
			if wantCode == 0 {
				if err != nil || local == nil || local.ContainerID != "c1" {
					t.Errorf("DEL = %v, Local got %+v; want the call handed to Local", err, local)
				}
				return
			}
			var te *types.Error
			if !errors.As(err, &te) || te.Code != wantCode || !strings.Contains(te.Msg, sock) {
				t.Errorf("%s = %v, want code %d naming %s", command, err, wantCode, sock)
			}
			if local != nil {
				t.Errorf("%s ran Local", command)
			}
		})
	}
}

func TestPluginBadConfig(t *testing.T) {
	args := shimArgs(t.TempDir())
	args.StdinData = []byte(`{"name":`)
	err := (&Plugin{Stdout: &bytes.Buffer{}, Timeout: 5 * time.Second}).Funcs().Add(args)
	var te *types.Error
	if !errors.As(err, &te) || te.Code != types.ErrDecodingFailure {
		t.Errorf("ADD with broken JSON = %v, want code %d", err, types.ErrDecodingFailure)
	}
}

// fakeBraid writes a braid executable into a new CNI_PATH dir that records
// its environment and stdin in record and runs tail (shell) at the end.
func fakeBraid(t *testing.T, tail string) (binDir, record string) {
	t.Helper()
	binDir = t.TempDir()
	record = filepath.Join(t.TempDir(), "record")
	script := "#!/bin/sh\n{ env | grep ^CNI_ | sort; cat; } > " + record + "\n" + tail + "\n"
	if err := os.WriteFile(filepath.Join(binDir, "braid"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return binDir, record
}

// TestExecBraid: a DEL the daemon did not answer runs braid from CNI_PATH
// with the runtime's call; braid's own CNI error comes back, code kept.
func TestExecBraid(t *testing.T) {
	binDir, record := fakeBraid(t, "exit 0")
	args := shimArgs(t.TempDir())
	args.Path = "/nonexistent" + string(filepath.ListSeparator) + binDir
	if err := execBraid(context.Background(), args); err != nil {
		t.Fatalf("execBraid: %v", err)
	}
	got, err := os.ReadFile(record)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"CNI_COMMAND=DEL", "CNI_CONTAINERID=c1", "CNI_NETNS=/var/run/netns/c1", "CNI_IFNAME=eth0", "CNI_ARGS=K8S_POD_NAME=p", "CNI_PATH=" + args.Path, string(args.StdinData)} {
		if !strings.Contains(string(got), want) {
			t.Errorf("braid ran without %q; it got:\n%s", want, got)
		}
	}

	binDir, _ = fakeBraid(t, `echo '{"cniVersion":"1.0.0","code":5,"msg":"journal unreadable"}'; exit 1`)
	args.Path = binDir
	err = execBraid(context.Background(), args)
	var te *types.Error
	if !errors.As(err, &te) || te.Code != 5 || te.Msg != "journal unreadable" {
		t.Errorf("execBraid with failing braid = %v, want its code 5", err)
	}

	args.Path = t.TempDir()
	err = execBraid(context.Background(), args)
	if !errors.As(err, &te) || te.Code != types.ErrTryAgainLater {
		t.Errorf("execBraid without braid = %v, want code 11", err)
	}
}

// TestPluginRefusesUnderMark: a shim that braid (or a plugin braid ran)
// started refuses with code 7 and sends nothing.
func TestPluginRefusesUnderMark(t *testing.T) {
	sent := false
	sock := serve(t, func(*wire.Request) *wire.Response {
		sent = true
		return &wire.Response{}
	})
	p := &Plugin{Stdout: &bytes.Buffer{}, Timeout: 5 * time.Second, Getenv: func(k string) string {
		if k == caller.Env {
			return "outer"
		}
		return ""
	}}
	for _, command := range []string{"ADD", "DEL", "CHECK", "STATUS", "GC"} {
		err := verb(p, command)(shimArgs(filepath.Dir(sock)))
		var te *types.Error
		if !errors.As(err, &te) || te.Code != types.ErrInvalidNetworkConfig || !strings.Contains(te.Msg, "called by braid") {
			t.Errorf("%s under the mark = %v, want code 7", command, err)
		}
	}
	if sent {
		t.Error("a request reached the daemon")
	}
}

// TestPluginLocalDelFreshDeadline: a DEL the daemon held until the shim's
// deadline passed still gets a whole deadline of its own for the local
// delete.
func TestPluginLocalDelFreshDeadline(t *testing.T) {
	never := make(chan struct{})
	t.Cleanup(func() { close(never) })
	sock := serve(t, func(*wire.Request) *wire.Response {
		<-never // a daemon that never answers
		return nil
	})
	var localErr error
	var left time.Duration
	p := &Plugin{Stdout: &bytes.Buffer{}, Timeout: 200 * time.Millisecond, Local: func(ctx context.Context, _ *skel.CmdArgs) error {
		localErr = ctx.Err()
		if d, ok := ctx.Deadline(); ok {
			left = time.Until(d)
		}
		return nil
	}}
	if err := verb(p, "DEL")(shimArgs(filepath.Dir(sock))); err != nil {
		t.Fatalf("DEL: %v", err)
	}
	if localErr != nil || left < 100*time.Millisecond {
		t.Errorf("Local got a context with error %v and %s left, want a fresh deadline", localErr, left)
	}
}
