package autoconf

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/braid-cni/braid/install"
)

const own = "00-braid.conflist"

func writer(t *testing.T) *Writer {
	t.Helper()
	return &Writer{
		Dir:     t.TempDir(),
		Own:     own,
		Options: install.Options{HostConfDir: "/etc/cni/net.d", DaemonSocketDir: "/run/braid"},
		Log:     slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

func write(t *testing.T, dir, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

const (
	flannel = `{"cniVersion":"1.0.0","name":"cbr0","plugins":[{"type":"flannel"},{"type":"portmap","capabilities":{"portMappings":true}}]}`
	calico  = `{"cniVersion":"0.4.0","name":"k8s-pod-network","plugins":[{"type":"calico"},{"type":"bandwidth","capabilities":{"bandwidth":true}}]}`
)

// braidEntry reads braid's file back: the wrapped file, the capabilities,
// the version and the socket dir.
func braidEntry(t *testing.T, w *Writer) (cluster string, caps map[string]bool, version, socket string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(w.Dir, own))
	if err != nil {
		t.Fatal(err)
	}
	var list struct {
		CNIVersion string `json:"cniVersion"`
		Plugins    []struct {
			Type            string          `json:"type"`
			ClusterNetwork  string          `json:"clusterNetwork"`
			Capabilities    map[string]bool `json:"capabilities"`
			DaemonSocketDir string          `json:"daemonSocketDir"`
		} `json:"plugins"`
	}
	if err := json.Unmarshal(data, &list); err != nil {
		t.Fatalf("braid config %s: %v", data, err)
	}
	if len(list.Plugins) != 1 || list.Plugins[0].Type != "braid-shim" {
		t.Fatalf("braid config %s: want one braid-shim plugin (thick mode)", data)
	}
	p := list.Plugins[0]
	return p.ClusterNetwork, p.Capabilities, list.CNIVersion, p.DaemonSocketDir
}

func TestSync(t *testing.T) {
	w := writer(t)
	if changed, err := w.Sync(); err != nil || changed {
		t.Fatalf("Sync with no primary = %v, %v; want nothing written", changed, err)
	}
	if _, err := os.Stat(filepath.Join(w.Dir, own)); !os.IsNotExist(err) {
		t.Fatalf("braid config written without a primary: %v", err)
	}

	write(t, w.Dir, "10-flannel.conflist", flannel)
	if changed, err := w.Sync(); err != nil || !changed {
		t.Fatalf("Sync with a primary = %v, %v; want written", changed, err)
	}
	cluster, caps, version, socket := braidEntry(t, w)
	if cluster != "/etc/cni/net.d/10-flannel.conflist" || !caps["portMappings"] || version != "1.0.0" || socket != "/run/braid" {
		t.Errorf("braid config wraps %s caps %v version %s socket %s", cluster, caps, version, socket)
	}
	if changed, err := w.Sync(); err != nil || changed {
		t.Errorf("second Sync = %v, %v; want unchanged", changed, err)
	}

	// A new primary that sorts first takes over, with its capabilities.
	write(t, w.Dir, "05-calico.conflist", calico)
	if changed, err := w.Sync(); err != nil || !changed {
		t.Fatalf("Sync after the primary changed = %v, %v", changed, err)
	}
	cluster, caps, version, _ = braidEntry(t, w)
	if cluster != "/etc/cni/net.d/05-calico.conflist" || !caps["bandwidth"] || caps["portMappings"] || version != "0.4.0" {
		t.Errorf("braid config after the change wraps %s caps %v version %s", cluster, caps, version)
	}

	// Without any primary, braid's config goes too.
	for _, f := range []string{"05-calico.conflist", "10-flannel.conflist"} {
		if err := os.Remove(filepath.Join(w.Dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	if changed, err := w.Sync(); err != nil || !changed {
		t.Fatalf("Sync after the primary went = %v, %v", changed, err)
	}
	if _, err := os.Stat(filepath.Join(w.Dir, own)); !os.IsNotExist(err) {
		t.Errorf("braid config still there without a primary: %v", err)
	}
}

// TestRun follows the primary config as it appears, changes and goes, and
// removes braid's config on exit.
func TestRun(t *testing.T) {
	w := writer(t)
	w.RemoveOnExit = true
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()

	write(t, w.Dir, "10-flannel.conflist", flannel)
	eventually(t, "braid config for flannel", func() bool {
		return wrapped(w) == "/etc/cni/net.d/10-flannel.conflist"
	})
	write(t, w.Dir, "05-calico.conflist", calico)
	eventually(t, "braid config for calico", func() bool {
		return wrapped(w) == "/etc/cni/net.d/05-calico.conflist"
	})
	// Someone deletes braid's file: it comes back.
	if err := os.Remove(filepath.Join(w.Dir, own)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "braid config rewritten", func() bool {
		_, err := os.Stat(filepath.Join(w.Dir, own))
		return err == nil
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if _, err := os.Stat(filepath.Join(w.Dir, own)); !os.IsNotExist(err) {
		t.Errorf("braid config left after Run ended with RemoveOnExit: %v", err)
	}
}

// TestExitOnlyOnUninstall: with Uninstalling set, RemoveOnExit removes
// braid's file only when braid is being uninstalled; a restart, or no
// answer, keeps it.
func TestExitOnlyOnUninstall(t *testing.T) {
	tests := []struct {
		name         string
		uninstalling bool
		err          error
		wantFile     bool
	}{
		{"uninstall", true, nil, false},
		{"restart", false, nil, true},
		{"no answer", false, errors.New("read braid's own pod kube-system/braidd-x: connection refused"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := writer(t)
			w.RemoveOnExit = true
			asked := 0
			w.Uninstalling = func(ctx context.Context) (bool, error) {
				asked++
				if _, ok := ctx.Deadline(); !ok {
					t.Error("Uninstalling asked without a deadline")
				}
				return tt.uninstalling, tt.err
			}
			write(t, w.Dir, "10-flannel.conflist", flannel)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- w.Run(ctx) }()
			eventually(t, "braid config for flannel", func() bool { return wrapped(w) != "" })
			cancel()
			if err := <-done; err != nil {
				t.Fatalf("Run: %v", err)
			}
			_, err := os.Stat(filepath.Join(w.Dir, own))
			if got := err == nil; got != tt.wantFile || asked != 1 {
				t.Errorf("braid config present after exit = %v (asked %d times), want %v", got, asked, tt.wantFile)
			}
		})
	}
}

// wrapped is the clusterNetwork braid's file names now, or "".
func wrapped(w *Writer) string {
	data, err := os.ReadFile(filepath.Join(w.Dir, own))
	if err != nil {
		return ""
	}
	var list struct {
		Plugins []struct {
			ClusterNetwork string `json:"clusterNetwork"`
		} `json:"plugins"`
	}
	if json.Unmarshal(data, &list) != nil || len(list.Plugins) != 1 {
		return ""
	}
	return list.Plugins[0].ClusterNetwork
}

// eventually waits up to ten seconds for cond: a liveness bound for the
// watcher, not a speed requirement.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
