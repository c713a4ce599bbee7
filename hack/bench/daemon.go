package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// daemon is one braidd process.
type daemon struct {
	socketDir string
	opsAddr   string
	cmd       *exec.Cmd
}

// startDaemon runs braidd with its own socket directory under the work
// directory and waits until it is ready. The env stops it in tearDown.
func (e *env) startDaemon(ctx context.Context, name string, parallel bool) (*daemon, error) {
	dir := filepath.Join(e.work, name)
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	d := &daemon{socketDir: filepath.Join(dir, "run"), opsAddr: addr}
	config := filepath.Join(dir, "braidd.json")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	err = writeJSON(config, map[string]any{
		"kubeconfig": e.kubeconfig, "socketDir": d.socketDir, "nodeName": "node1",
		"metricsAddr": d.opsAddr, "logLevel": "info", "parallelAttach": parallel,
	})
	if err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(filepath.Join(dir, "braidd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	d.cmd = exec.Command(e.braiddBin, "--config", config)
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	if err := d.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start braidd: %w", err)
	}
	e.daemons = append(e.daemons, d)
	return d, d.waitReady(ctx)
}

// waitReady polls /readyz (its caches synced) for up to 30 seconds.
func (d *daemon) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		resp, err := http.Get("http://" + d.opsAddr + "/readyz")
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

// stop sends SIGTERM, then kills after 15 seconds.
func (d *daemon) stop() {
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

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}
