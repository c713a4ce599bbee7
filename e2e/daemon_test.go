package e2e

import (
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"

	"github.com/braid-cni/braid/e2e/framework"
)

// daemon is a braidd process for one node, on the suite's API server with
// braidd's least-privilege token. Its config carries braid's settings, as
// braidd's ConfigMap does: in thick mode it is the only source of them.
type daemon struct {
	*framework.Braidd
	t *testing.T
	// settings are the braid keys it was started with (node.daemonSettings).
	settings map[string]any
}

func startDaemon(t *testing.T, dir string, settings map[string]any) *daemon {
	t.Helper()
	b, err := framework.NewBraidd(shared.braiddBin, dir, daemonConfig(settings, nil))
	if err != nil {
		t.Fatal(err)
	}
	d := &daemon{Braidd: b, t: t, settings: settings}
	d.start()
	t.Cleanup(func() {
		d.stop()
		if t.Failed() {
			if data, err := os.ReadFile(d.Log); err == nil {
				t.Logf("braidd.log:\n%s", tail(string(data), 40))
			}
		}
	})
	return d
}

// daemonConfig is braidd's config for a node of the suite: braid's
// settings, the suite's kubeconfig, node1, debug logs, then extra.
func daemonConfig(settings, extra map[string]any) map[string]any {
	conf := map[string]any{"kubeconfig": shared.braiddKubeconfig, "nodeName": "node1", "logLevel": "debug"}
	for k, v := range settings {
		conf[k] = v
	}
	for k, v := range extra {
		conf[k] = v
	}
	return conf
}

// restart runs braidd again in the same directory (same socket) with
// other braid settings, as a changed ConfigMap and a rollout would.
func (d *daemon) restart(settings map[string]any) {
	d.t.Helper()
	d.stop()
	b, err := framework.NewBraidd(shared.braiddBin, d.Dir, daemonConfig(settings, nil))
	if err != nil {
		d.t.Fatal(err)
	}
	d.Braidd, d.settings = b, settings
	d.start()
}

// start runs braidd and waits until it is ready (its caches synced).
func (d *daemon) start() {
	d.t.Helper()
	if err := d.Start(d.t.Context()); err != nil {
		d.t.Fatal(err)
	}
}

func (d *daemon) stop() { d.Stop() }

// waitStatusWritten waits until braidd has no network-status left to write.
func (d *daemon) waitStatusWritten() {
	d.t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if strings.Contains(d.metricsText(), "\nbraid_status_pending 0\n") {
			return
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("braidd still has network-status to write:\n%s", grep(d.metricsText(), "braid_status_pending"))
		}
	}
}

// metricsText returns what braidd serves on /metrics.
func (d *daemon) metricsText() string {
	d.t.Helper()
	resp, err := http.Get("http://" + d.OpsAddr + "/metrics")
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
		if cniCode(err) != types.ErrTryAgainLater || !strings.Contains(err.Error(), n.daemon.SocketDir) {
			t.Fatalf("ADD with the daemon down = %v, want code 11 naming %s", err, n.daemon.SocketDir)
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
