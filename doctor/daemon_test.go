package doctor

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/braid-cni/braid/internal/testutil"
)

// fakeDaemon serves /healthz, and /readyz with readyCode, on braid.sock in dir.
func fakeDaemon(t *testing.T, dir string, readyCode int) {
	t.Helper()
	ln := testutil.ListenUnix(t, filepath.Join(dir, "braid.sock"))
	if err := os.Chmod(filepath.Join(dir, "braid.sock"), 0o600); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(readyCode)
	})
	srv := &http.Server{Handler: mux}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
}

func TestCheckDaemon(t *testing.T) {
	tests := []struct {
		name       string
		setup      func(t *testing.T, dir string)
		want       Status
		wantDetail string
	}{
		{
			name:  "answers and ready",
			setup: func(t *testing.T, dir string) { fakeDaemon(t, dir, http.StatusOK) },
			want:  OK, wantDetail: "healthy, ready",
		},
		{
			name:  "not ready",
			setup: func(t *testing.T, dir string) { fakeDaemon(t, dir, http.StatusServiceUnavailable) },
			want:  Warn, wantDetail: "not ready: HTTP 503",
		},
		{
			name: "socket too open",
			setup: func(t *testing.T, dir string) {
				fakeDaemon(t, dir, http.StatusOK)
				if err := os.Chmod(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(filepath.Join(dir, "braid.sock"), 0o666); err != nil {
					t.Fatal(err)
				}
			},
			want: Warn, wantDetail: "mode 0755, want 0700; socket mode 0666, want 0600",
		},
		{name: "no socket", setup: func(*testing.T, string) {}, want: Fail, wantDetail: "braid.sock"},
		{
			name: "nobody listening",
			setup: func(t *testing.T, dir string) {
				ln, err := net.Listen("unix", filepath.Join(dir, "braid.sock"))
				if err != nil {
					t.Fatal(err)
				}
				ln.(*net.UnixListener).SetUnlinkOnClose(false)
				_ = ln.Close()
			},
			want: Fail, wantDetail: "does not answer",
		},
		{
			name:  "not a socket",
			setup: func(t *testing.T, dir string) { writeFile(t, filepath.Join(dir, "braid.sock"), "x") },
			want:  Fail, wantDetail: "not a socket",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := testutil.SocketDir(t)
			tt.setup(t, dir)
			got := CheckDaemon(context.Background(), dir, 2*time.Second)
			if got.Status != tt.want || !strings.Contains(got.Detail, tt.wantDetail) {
				t.Errorf("CheckDaemon = %+v, want %s containing %q", got, tt.want, tt.wantDetail)
			}
			if got.Status != OK && got.Fix == "" {
				t.Errorf("no fix in %+v", got)
			}
		})
	}
}

func TestCheckDaemonNoDir(t *testing.T) {
	got := CheckDaemon(context.Background(), filepath.Join(t.TempDir(), "gone"), time.Second)
	if got.Status != Fail || !strings.Contains(got.Detail, "socket dir") {
		t.Errorf("CheckDaemon = %+v, want a failing socket dir", got)
	}
}
