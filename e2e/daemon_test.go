package e2e

import (
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
)

// daemon is a braidd process for one node, on the suite's API server with
// braid's least-privilege token (plus the daemon's ClusterRole).
type daemon struct {
	t         *testing.T
	config    string
	socketDir string
	opsAddr   string
	log       string
	cmd       *exec.Cmd
}

func startDaemon(t *testing.T, dir string) *daemon {
	t.Helper()
	d := &daemon{t: t, socketDir: filepath.Join(dir, "run"), log: filepath.Join(dir, "braidd.log"), config: filepath.Join(dir, "braidd.json")}
	d.opsAddr = freeAddr(t)
	writeJSON(t, d.config, map[string]any{
		"kubeconfig":  shared.kubeconfig,
		"socketDir":   d.socketDir,
		"nodeName":    "node1",
		"metricsAddr": d.opsAddr,
		"logLevel":    "debug",
	})
	d.start()
	t.Cleanup(func() {
		d.stop()
		if t.Failed() {
			if data, err := os.ReadFile(d.log); err == nil {
				t.Logf("braidd.log:\n%s", tail(string(data), 40))
			}
		}
	})
	return d
}

// start runs braidd and waits until it is ready (its caches synced).
func (d *daemon) start() {
	d.t.Helper()
	logf, err := os.OpenFile(d.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		d.t.Fatal(err)
	}
	defer logf.Close()
	d.cmd = exec.Command(shared.braiddBin, "--config", d.config)
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	if err := d.cmd.Start(); err != nil {
		d.t.Fatalf("start braidd: %v", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + d.opsAddr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("braidd not ready in 30s: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop ends braidd the way a DaemonSet update does: SIGTERM.
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

// metricsText returns what braidd serves on /metrics.
func (d *daemon) metricsText() string {
	d.t.Helper()
	resp, err := http.Get("http://" + d.opsAddr + "/metrics")
	if err != nil {
		d.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		d.t.Fatal(err)
	}
	return string(b)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestDaemonLifecycle: what thick mode adds. The daemon restarting between
// ADD and DEL, the daemon down at DEL (the shim deletes from the journal
// itself) and at ADD (try again later, naming the socket), and its metrics.
func TestDaemonLifecycle(t *testing.T) {
	t.Run("restart between ADD and DEL", func(t *testing.T) {
		n, sb := attached(t, thick, "1.0.0")
		n.daemon.stop()
		n.daemon.start()
		sb.mustDel()
		released(t, n, sb)
		if m := n.daemon.metricsText(); !strings.Contains(m, `braid_requests_total{result="ok",verb="DEL"} 1`) {
			t.Errorf("the restarted daemon did not count the DEL:\n%s", grep(m, "braid_requests_total"))
		}
	})
	t.Run("down at DEL", func(t *testing.T) {
		n, sb := attached(t, thick, "1.0.0")
		n.daemon.stop()
		sb.mustDel()
		released(t, n, sb)
	})
	t.Run("down at ADD", func(t *testing.T) {
		n := newNode(t, thick, "1.0.0")
		n.createNAD(n.namespace, "blue", n.bridgeNet("blue", 1, false))
		sb := n.sandbox(n.createPod("p", map[string]string{nadv1.NetworkAttachmentAnnot: "blue"}))
		n.daemon.stop()
		_, err := sb.add()
		if cniCode(err) != types.ErrTryAgainLater || !strings.Contains(err.Error(), n.daemon.socketDir) {
			t.Fatalf("ADD with the daemon down = %v, want code 11 naming %s", err, n.daemon.socketDir)
		}
		if got := sb.links(); len(got) != 0 {
			t.Errorf("ADD with the daemon down left %v", keys(got))
		}
		if l := n.leases("cluster"); len(l) != 0 {
			t.Errorf("ADD with the daemon down leased %v", l)
		}
	})
	t.Run("metrics", func(t *testing.T) {
		n, sb := attached(t, thick, "1.0.0")
		sb.mustDel()
		m := n.daemon.metricsText()
		for _, want := range []string{
			`braid_requests_total{result="ok",verb="ADD"} 1`,
			`braid_requests_total{result="ok",verb="DEL"} 1`,
			`braid_request_duration_seconds_count{result="ok",verb="ADD"} 1`,
			"braid_requests_in_flight 0",
			`braid_delegate_duration_seconds_count{network="cluster",plugin="bridge",verb="ADD"} 1`,
			`braid_delegate_duration_seconds_count{network="blue",plugin="bridge",verb="DEL"} 1`,
			"braid_journal_entries 0",
			`braid_api_requests_total{code="200",method="PATCH"} 1`,
		} {
			if !strings.Contains(m, want) {
				t.Errorf("/metrics lacks %q:\n%s", want, grep(m, "braid_"))
			}
		}
	})
}

// grep keeps the lines of s that contain sub.
func grep(s, sub string) string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		if strings.Contains(line, sub) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}
