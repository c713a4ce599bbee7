package framework

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"
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
}

// NewBraidd writes braidd's config into dir: the given keys plus socketDir
// and metricsAddr, which it chooses. It does not start the process.
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
	return d.waitReady(ctx)
}

func (d *Braidd) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		resp, err := http.Get("http://" + d.OpsAddr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("braidd not ready: %v (%w)", err, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Stop ends braidd the way a DaemonSet update does: SIGTERM, then a kill
// after 15 seconds. Stopping a stopped daemon does nothing.
func (d *Braidd) Stop() {
	if d.cmd == nil || d.cmd.Process == nil {
		return
	}
	_ = d.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = d.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = d.cmd.Process.Kill()
		<-done
	}
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
