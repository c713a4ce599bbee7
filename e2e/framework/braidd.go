package framework

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/braid-cni/braid/wire"
)

// Braidd is a braidd process run by a test or the benchmark: its own
// directory (config, socket dir, log) and a loopback metrics address.
type Braidd struct {
	Binary    string
	Dir       string
	SocketDir string // Dir/run
	OpsAddr   string // 127.0.0.1:<free port>
	Log       string // Dir/braidd.log
	config    string
	cmd       *exec.Cmd
	exited    chan struct{} // closed once cmd.Wait returned
}

// NewBraidd writes braidd's config into dir: the given keys plus socketDir
// and metricsAddr, which it chooses unless config sets them (SocketDir
// follows a socketDir in config). It does not start the process.
func NewBraidd(binary, dir string, config map[string]any) (*Braidd, error) {
	addr, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	d := &Braidd{Binary: binary, Dir: dir, SocketDir: filepath.Join(dir, "run"), OpsAddr: addr,
		Log: filepath.Join(dir, "braidd.log"), config: filepath.Join(dir, "braidd.json")}
	conf := map[string]any{"socketDir": d.SocketDir, "metricsAddr": d.OpsAddr}
	for k, v := range config {
		conf[k] = v
	}
	if dir, ok := conf["socketDir"].(string); ok {
		d.SocketDir = dir
	}
	data, err := json.MarshalIndent(conf, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode braidd config: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("braidd dir %s: %w", dir, err)
	}
	if err := os.WriteFile(d.config, data, 0o600); err != nil {
		return nil, fmt.Errorf("write braidd config %s: %w", d.config, err)
	}
	return d, nil
}

// Start runs braidd, logging to Log, and waits up to 30 seconds for
// /readyz (its caches synced).
func (d *Braidd) Start(ctx context.Context) error {
	if err := d.Launch(ctx); err != nil {
		return err
	}
	return d.WaitReady(ctx)
}

// Launch runs braidd, logging to Log, and waits up to 30 seconds until it
// serves: /healthz answers and the socket accepts connections, whether or
// not its caches have synced.
func (d *Braidd) Launch(ctx context.Context) error {
	logf, err := os.OpenFile(d.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("braidd log %s: %w", d.Log, err)
	}
	defer logf.Close()
	d.cmd = exec.Command(d.Binary, "--config", d.config)
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	if err := d.cmd.Start(); err != nil {
		return fmt.Errorf("start braidd: %w", err)
	}
	cmd, exited := d.cmd, make(chan struct{})
	d.exited = exited
	go func() { _ = cmd.Wait(); close(exited) }()
	return d.poll(ctx, "serving", func(ctx context.Context) error {
		if code, _, err := d.Probe(ctx, "/healthz"); err != nil || code != http.StatusOK {
			return fmt.Errorf("/healthz: %d, %v", code, err)
		}
		var dialer net.Dialer
		conn, err := dialer.DialContext(ctx, "unix", wire.SocketPath(d.SocketDir))
		if err != nil {
			return err
		}
		return conn.Close()
	})
}

// WaitReady waits up to 30 seconds for /readyz to answer 200: the caches
// synced.
func (d *Braidd) WaitReady(ctx context.Context) error {
	return d.poll(ctx, "ready", func(ctx context.Context) error {
		code, body, err := d.Probe(ctx, "/readyz")
		if err == nil && code != http.StatusOK {
			err = fmt.Errorf("/readyz: %d %s", code, body)
		}
		return err
	})
}

// poll runs check every 50 ms until it succeeds, braidd exits or 30
// seconds pass.
func (d *Braidd) poll(ctx context.Context, what string, check func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		err := check(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-d.exited:
			return fmt.Errorf("braidd not %s: it exited (see %s)", what, d.Log)
		case <-ctx.Done():
			return fmt.Errorf("braidd not %s: %v (%w)", what, err, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Probe GETs path on the ops address and returns the status code and the
// body.
func (d *Braidd) Probe(ctx context.Context, path string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+d.OpsAddr+path, nil)
	if err != nil {
		return 0, "", fmt.Errorf("braidd %s: %w", path, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", fmt.Errorf("braidd %s: %w", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, "", fmt.Errorf("braidd %s: %w", path, err)
	}
	return resp.StatusCode, string(body), nil
}

// Pid is the running braidd's process id, 0 when it is not running.
func (d *Braidd) Pid() int {
	if d.cmd == nil || d.cmd.Process == nil {
		return 0
	}
	return d.cmd.Process.Pid
}

// Stop ends braidd the way a DaemonSet update does: SIGTERM, then a kill
// after 15 seconds. Stopping a stopped daemon does nothing.
func (d *Braidd) Stop() {
	if d.cmd == nil || d.cmd.Process == nil {
		return
	}
	_ = d.cmd.Process.Signal(os.Interrupt)
	select {
	case <-d.exited:
	case <-time.After(15 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.exited
	}
	d.cmd = nil
}

// Kill ends braidd at once with SIGKILL, as a crash or the OOM killer
// does: no shutdown runs, and the delegates it started are left running.
func (d *Braidd) Kill() {
	if d.cmd == nil || d.cmd.Process == nil {
		return
	}
	_ = d.cmd.Process.Kill()
	<-d.exited
	d.cmd = nil
}

// FreeAddr returns a loopback address with a port free right now.
func FreeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}
