package e2e

import (
	"fmt"
	"testing"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"

	"github.com/braid-cni/braid/e2e/framework"
)

// TestNADCreatedJustBeforePod: in thick mode, a NAD created a moment before
// the pod that names it, and the ADD right after, against a synced braidd.
// Whether braidd's caches have seen the two objects by then or it reads
// them with a live GET, ADD succeeds with the secondary interface in the
// netns and in network-status, and braidd counts exactly the live GETs it
// made.
func TestNADCreatedJustBeforePod(t *testing.T) {
	blue := map[string]string{nadv1.NetworkAttachmentAnnot: "blue"}

	// As a runtime meets it: no control over braidd's watches, so either
	// path may serve the two objects.
	t.Run("immediately", func(t *testing.T) {
		n := newNode(t, thick, "1.0.0")
		before := fallbacks(t, n.daemon.Braidd)
		n.createNAD(n.namespace, "blue", n.bridgeNet("blue", 1, false))
		sb := n.sandbox(n.createPod("p", blue))
		sb.mustAdd()
		used := fallbacks(t, n.daemon.Braidd) - before
		// At most one live GET for the pod and one for the NAD.
		if used < 0 || used > 2 {
			t.Errorf("ADD made %v live-GET fallbacks, want 0 to 2", used)
		}
		t.Logf("live-GET fallbacks during ADD: %v (cache hits: %v)", used, 2-used)
		attachedBlue(t, n, sb)
		sb.mustDel()
		released(t, n, sb)
	})

	// Deterministic: braidd reaches the API server through a proxy that
	// holds back its list and watch streams while the NAD and the pod are
	// created, so both must come from live GETs; once the streams flow
	// again and the caches hold both, the next pod's ADD must need none.
	t.Run("watches behind, then caught up", func(t *testing.T) {
		n := newNode(t, thick, "1.0.0")
		n.daemon.stop()
		proxy := newAPIProxy(t)
		d := launchDaemon(t, daemonConfig(n.daemonSettings(), map[string]any{
			"kubeconfig": writeKubeconfig(t, t.TempDir(), proxy.url, proxy.caPEM, shared.braiddToken),
			"socketDir":  n.daemon.SocketDir, // where the node's shim forwards to
		}), true)
		n.daemon = &daemon{Braidd: d, t: t}
		pods0, nads0 := mustMetric(t, d, "braid_cache_pods"), mustMetric(t, d, "braid_cache_nads")

		proxy.hold()
		n.createNAD(n.namespace, "blue", n.bridgeNet("blue", 1, false))
		first := n.sandbox(n.createPod("p", blue))
		before := fallbacks(t, d)
		first.mustAdd()
		if used := fallbacks(t, d) - before; used != 2 {
			t.Errorf("ADD with braidd's watches held made %v live-GET fallbacks, want 2 (the pod and the NAD)", used)
		}
		cachedCounts(t, d, pods0, nads0)
		attachedBlue(t, n, first)

		proxy.release()
		waitCached(t, d, pods0+1, nads0+1)
		second := n.sandbox(n.createPod("q", blue))
		waitCached(t, d, pods0+2, nads0+1)
		before = fallbacks(t, d)
		second.mustAdd()
		if used := fallbacks(t, d) - before; used != 0 {
			t.Errorf("ADD with both objects cached made %v live-GET fallbacks, want 0", used)
		}
		attachedBlue(t, n, second)
		wantMetric(t, d, `braid_requests_total{result="ok",verb="ADD"}`, 2)

		first.mustDel()
		second.mustDel()
		released(t, n, first)
		if got := second.links(); len(got) != 0 {
			t.Errorf("second pod still has interfaces %v", keys(got))
		}
	})
}

// cachedCounts fails the test unless braidd's caches hold pods pods and
// nads NADs.
func cachedCounts(t *testing.T, d *framework.Braidd, pods, nads float64) {
	t.Helper()
	if err := cacheHolds(t, d, pods, nads); err != nil {
		t.Error(err)
	}
}

// waitCached waits until braidd's caches hold pods pods and nads NADs.
func waitCached(t *testing.T, d *framework.Braidd, pods, nads float64) {
	t.Helper()
	eventually(t, 30*time.Second, "braidd's caches catch up", func() error { return cacheHolds(t, d, pods, nads) })
}

func cacheHolds(t *testing.T, d *framework.Braidd, pods, nads float64) error {
	t.Helper()
	p, a := mustMetric(t, d, "braid_cache_pods"), mustMetric(t, d, "braid_cache_nads")
	if p != pods || a != nads {
		return fmt.Errorf("caches hold %v pods and %v NADs, want %v and %v", p, a, pods, nads)
	}
	return nil
}
