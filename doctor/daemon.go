package doctor

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/braid-cni/braid/wire"
)

const nameDaemon = "daemon"

// CheckDaemon checks braidd's socket in dir (thick mode): a 0600 socket in
// a 0700 directory, answering /healthz and /readyz.
func CheckDaemon(ctx context.Context, dir string, timeout time.Duration) Result {
	sock := wire.SocketPath(dir)
	start := "start braidd on this node (kubectl -n kube-system get pods -l app=braidd) and read its log"
	dirInfo, err := os.Stat(dir)
	if err != nil {
		return fail(nameDaemon, fmt.Sprintf("socket dir %s: %v", dir, err), start)
	}
	info, err := os.Stat(sock)
	if err != nil {
		return fail(nameDaemon, fmt.Sprintf("socket %s: %v", sock, err), start)
	}
	if info.Mode().Type() != fs.ModeSocket {
		return fail(nameDaemon, sock+" is not a socket", "remove "+sock+" and restart braidd")
	}
	health, err := probe(ctx, sock, "/healthz", timeout)
	if err != nil || health != http.StatusOK {
		return fail(nameDaemon, fmt.Sprintf("braidd does not answer on %s: %s", sock, answer(health, err)), start)
	}
	ready, err := probe(ctx, sock, "/readyz", timeout)
	if err != nil || ready != http.StatusOK {
		return warn(nameDaemon, fmt.Sprintf("braidd answers on %s but is not ready: %s", sock, answer(ready, err)),
			"wait for braidd's caches to sync; if it stays unready, check its API access in its log")
	}
	var loose []string
	if perm := dirInfo.Mode().Perm(); perm != 0o700 {
		loose = append(loose, fmt.Sprintf("dir %s mode %04o, want 0700", dir, perm))
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		loose = append(loose, fmt.Sprintf("socket mode %04o, want 0600", perm))
	}
	if len(loose) > 0 {
		return warn(nameDaemon, fmt.Sprintf("braidd answers on %s, but %s", sock, strings.Join(loose, "; ")),
			"restart braidd: it recreates the socket with mode 0600 in a 0700 dir")
	}
	return ok(nameDaemon, "braidd answers on "+sock+" (healthy, ready)")
}

func answer(code int, err error) string {
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("HTTP %d", code)
}

// probe GETs path from the daemon over its socket and returns the status.
func probe(ctx context.Context, sock, path string, timeout time.Duration) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}
	defer client.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://braid"+path, nil)
	if err != nil {
		return 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, nil
}
