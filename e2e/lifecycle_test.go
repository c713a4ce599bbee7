package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/plugins/pkg/testutils"
	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/braid-cni/braid/internal/testutil"
)

// attached sets up a node with one pod on the cluster network and "blue".
func attached(t *testing.T, mode, version string) (*node, *sandbox) {
	t.Helper()
	n := newNode(t, mode, version)
	n.createNAD(n.namespace, "blue", n.bridgeNet("blue", 1, false))
	sb := n.sandbox(n.createPod("p", map[string]string{nadv1.NetworkAttachmentAnnot: "blue"}))
	sb.mustAdd()
	if len(n.leases("cluster")) != 1 || len(n.leases("blue")) != 1 {
		t.Fatalf("after ADD leases are cluster=%v blue=%v, want one each", n.leases("cluster"), n.leases("blue"))
	}
	return n, sb
}

// released fails the test unless every interface, every lease (of the
// cluster network, blue and the extra networks) and the journal entry are
// gone.
func released(t *testing.T, n *node, sb *sandbox, extra ...string) {
	t.Helper()
	if got := sb.links(); len(got) != 0 {
		t.Errorf("pod still has interfaces %v", keys(got))
	}
	for _, net := range append([]string{"cluster", "blue"}, extra...) {
		if l := n.leases(net); len(l) != 0 {
			t.Errorf("network %s still leases %v", net, l)
		}
	}
	if got := n.journal(); len(got) != 0 {
		t.Errorf("journal still holds %v", got)
	}
}

// TestDelWithoutTheAPI: DEL finds everything in the journal, whether the pod
// is gone, the NADs are gone, or the API server is down.
func TestDelWithoutTheAPI(t *testing.T) {
	inModes(t, func(t *testing.T, mode string) {
		tests := []struct {
			name   string
			before func(t *testing.T, n *node, sb *sandbox)
		}{
			{name: "pod deleted", before: func(t *testing.T, n *node, sb *sandbox) {
				zero := int64(0)
				if err := n.kube.CoreV1().Pods(n.namespace).Delete(t.Context(), "p", metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
					t.Fatal(err)
				}
			}},
			{name: "NAD deleted", before: func(t *testing.T, n *node, sb *sandbox) {
				if err := n.nads.K8sCniCncfIoV1().NetworkAttachmentDefinitions(n.namespace).Delete(t.Context(), "blue", metav1.DeleteOptions{}); err != nil {
					t.Fatal(err)
				}
			}},
			{name: "API server stopped", before: func(t *testing.T, n *node, sb *sandbox) {
				shared.cp.StopAPIServer()
				t.Cleanup(func() {
					ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
					defer cancel()
					if err := shared.cp.StartAPIServer(ctx); err != nil {
						t.Fatalf("restart API server: %v", err)
					}
				})
			}},
		}
		for _, v := range testutil.SpecVersions() {
			for _, tt := range tests {
				t.Run(v+"/"+tt.name, func(t *testing.T) {
					n, sb := attached(t, mode, v)
					tt.before(t, n, sb)
					sb.mustDel()
					released(t, n, sb)
					sb.mustDel()
				})
			}
		}
	})
}

// TestDelWithoutJournal: with no journal (or a corrupt one) DEL rebuilds the
// plan from the API; with neither it still releases the cluster network.
func TestDelWithoutJournal(t *testing.T) {
	inModes(t, func(t *testing.T, mode string) {
		t.Run("corrupt journal, pod still there", func(t *testing.T) {
			n, sb := attached(t, mode, "1.0.0")
			if err := os.WriteFile(filepath.Join(n.cniDir, sb.containerID), []byte("{not json"), 0o600); err != nil {
				t.Fatal(err)
			}
			sb.mustDel()
			released(t, n, sb)
		})
		t.Run("no journal, pod deleted", func(t *testing.T) {
			n, sb := attached(t, mode, "1.0.0")
			if err := os.Remove(filepath.Join(n.cniDir, sb.containerID)); err != nil {
				t.Fatal(err)
			}
			zero := int64(0)
			if err := n.kube.CoreV1().Pods(n.namespace).Delete(t.Context(), "p", metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
				t.Fatal(err)
			}
			sb.mustDel()
			if l := n.leases("cluster"); len(l) != 0 {
				t.Errorf("cluster network still leases %v", l)
			}
			if _, ok := sb.links()["eth0"]; ok {
				t.Error("eth0 still in the pod")
			}
		})
	})
}

// TestWithoutPod: a runtime call for a pod the API does not know attaches
// the cluster network only; so does a thin plugin without kubeconfig. In
// thick mode the shim's config never carries credentials: the daemon's
// serve it, and the pod gets every network.
func TestWithoutPod(t *testing.T) {
	inModes(t, func(t *testing.T, mode string) {
		tests := []struct {
			name     string
			setup    func(n *node) *sandbox
			thickIfs []string // interfaces in thick mode, when not just eth0
		}{
			{name: "pod not found", setup: func(n *node) *sandbox {
				sb := n.sandbox(n.createPod("gone", map[string]string{nadv1.NetworkAttachmentAnnot: "blue"}))
				zero := int64(0)
				if err := n.kube.CoreV1().Pods(n.namespace).Delete(n.t.Context(), "gone", metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
					n.t.Fatal(err)
				}
				sb.pod.UID = ""
				return sb
			}},
			{name: "no kubeconfig", setup: func(n *node) *sandbox {
				delete(n.braidConf, "kubeconfig")
				return n.sandbox(n.createPod("p", map[string]string{nadv1.NetworkAttachmentAnnot: "blue"}))
			}, thickIfs: []string{"eth0", "net1"}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				n := newNode(t, mode, "1.0.0")
				n.createNAD(n.namespace, "blue", n.bridgeNet("blue", 1, false))
				sb := tt.setup(n)
				res := sb.mustAdd()
				want := []string{"eth0"}
				if mode == thick && tt.thickIfs != nil {
					want = tt.thickIfs
				}
				if got := keys(sb.links()); !slices.Equal(got, want) {
					t.Errorf("pod interfaces = %v, want %v", got, want)
				}
				if len(res.IPs) != len(want) {
					t.Errorf("result IPs = %v, want one per interface %v", res.IPs, want)
				}
				sb.mustDel()
				if l := n.leases("cluster"); len(l) != 0 {
					t.Errorf("cluster network still leases %v", l)
				}
			})
		}
	})
}

// TestCheckStatusGC: CHECK notices a missing interface; STATUS asks the
// cluster network; GC releases every journaled container the runtime no
// longer lists, all its networks included.
func TestCheckStatusGC(t *testing.T) {
	inModes(t, func(t *testing.T, mode string) {
		n, a := attached(t, mode, "1.1.0")
		// CHECK before a second pod joins the bridge: the reference bridge
		// plugin compares the bridge's MAC, which the kernel changes as ports
		// come and go.
		if err := a.check(); err != nil {
			t.Fatalf("CHECK of a healthy pod: %v", err)
		}
		deleteLinkIn(t, a, "net1")
		if err := a.check(); err == nil {
			t.Error("CHECK passed with net1 gone")
		}
		b := n.sandbox(n.createPod("q", map[string]string{nadv1.NetworkAttachmentAnnot: "blue@b1"}))
		b.mustAdd()

		c, list := n.runtime()
		if err := c.GetStatusNetworkList(t.Context(), list); err != nil {
			t.Errorf("STATUS: %v", err)
		}

		// A runtime that lost its own cache (a fresh cache dir) still gets GC
		// done by braid's journal.
		fresh := libcni.NewCNIConfigWithCacheDir([]string{shared.braidDir}, t.TempDir(), nil)
		valid := []types.GCAttachment{{ContainerID: a.containerID, IfName: "eth0"}}
		if err := fresh.GCNetworkList(t.Context(), list, &libcni.GCArgs{ValidAttachments: valid}); err != nil {
			t.Fatalf("GC: %v", err)
		}
		if got := b.links(); len(got) != 0 {
			t.Errorf("GC left interfaces %v in the stale pod", keys(got))
		}
		if got := n.journal(); !slices.Equal(got, []string{a.containerID}) {
			t.Errorf("journal after GC = %v, want only %s", got, a.containerID)
		}
		if got := len(n.leases("cluster")); got != 1 {
			t.Errorf("cluster leases after GC = %d, want 1 (the valid pod's)", got)
		}
		if _, ok := a.links()["eth0"]; !ok {
			t.Error("GC removed the valid pod's eth0")
		}
	})
}

// TestAddWithAPIServerDown: ADD cannot read the pod, says "try again later"
// (code 11) and leaves nothing behind.
func TestAddWithAPIServerDown(t *testing.T) {
	inModes(t, func(t *testing.T, mode string) {
		n := newNode(t, mode, "1.0.0")
		sb := n.sandbox(n.createPod("p", map[string]string{nadv1.NetworkAttachmentAnnot: "blue"}))
		shared.cp.StopAPIServer()
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			if err := shared.cp.StartAPIServer(ctx); err != nil {
				t.Fatalf("restart API server: %v", err)
			}
		})
		_, err := sb.add()
		if got := cniCode(err); got != types.ErrTryAgainLater {
			t.Fatalf("ADD with the API server down: code %d (%v), want 11", got, err)
		}
		if got := sb.links(); len(got) != 0 {
			t.Errorf("refused ADD left %v", keys(got))
		}
		if l := n.leases("cluster"); len(l) != 0 {
			t.Errorf("refused ADD leased %v", l)
		}
	})
}

// TestRuntimeConfigReachesClusterNetwork: the runtime's capability args
// (here "mac", which the tuning plugin honours) go to the cluster network.
func TestRuntimeConfigReachesClusterNetwork(t *testing.T) {
	inModes(t, func(t *testing.T, mode string) {
		n := newNode(t, mode, "1.0.0")
		cluster := n.clusterConfig()
		cluster["plugins"] = append(cluster["plugins"].([]any), map[string]any{"type": "tuning", "capabilities": map[string]any{"mac": true}})
		writeJSON(t, n.braidConf["clusterNetwork"].(string), cluster)
		n.braidConf["capabilities"] = map[string]any{"mac": true}
		sb := n.sandbox(n.createPod("p", nil))
		c, list := n.runtime()
		rt := sb.rt()
		mac := fmt.Sprintf("02:00:00:aa:%02x:01", n.id)
		rt.CapabilityArgs = map[string]any{"mac": mac}
		if _, err := c.AddNetworkList(t.Context(), list, rt); err != nil {
			t.Fatal(err)
		}
		if got := sb.links()["eth0"].Attrs().HardwareAddr.String(); got != mac {
			t.Errorf("eth0 MAC = %s, want the runtime's %s", got, mac)
		}
		if err := c.DelNetworkList(t.Context(), list, rt); err != nil {
			t.Fatal(err)
		}
	})
}

// TestDelAfterNetnsGone: the runtime may call DEL after the sandbox's netns
// is gone; the interfaces went with it, and the leases must go too.
func TestDelAfterNetnsGone(t *testing.T) {
	inModes(t, func(t *testing.T, mode string) {
		n, sb := attached(t, mode, "1.0.0")
		path := sb.netns.Path()
		if err := sb.netns.Close(); err != nil {
			t.Fatal(err)
		}
		if err := testutils.UnmountNS(sb.netns); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(path); !os.IsNotExist(err) {
			t.Fatalf("netns %s still there: %v", path, err)
		}
		sb.mustDel()
		for _, net := range []string{"cluster", "blue"} {
			if l := n.leases(net); len(l) != 0 {
				t.Errorf("network %s still leases %v", net, l)
			}
		}
		if got := n.journal(); len(got) != 0 {
			t.Errorf("journal still holds %v", got)
		}
	})
}
