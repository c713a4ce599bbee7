package e2e

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
)

// slowNode is a node with a NAD "slow": a bridge with a host-local lease,
// then a delegate that records its ADD and waits until release exists.
type slowNode struct {
	*node
	record, release string
}

func newSlowNode(t *testing.T, mode string) *slowNode {
	t.Helper()
	n := newNode(t, mode, "1.0.0")
	bin := n.testPlugin("record", "record")
	n.braidConf["binDir"] = bin + ":" + shared.pluginsDir
	s := &slowNode{node: n, record: filepath.Join(n.dir, "record.jsonl"), release: filepath.Join(n.dir, "release")}
	// A delegate whose braid was killed waits on; let it go.
	t.Cleanup(func() { _ = os.WriteFile(s.release, nil, 0o600) })
	first := n.bridgeNet("slow", 8, false)
	delete(first, "cniVersion")
	delete(first, "name")
	n.createNAD(n.namespace, "slow", map[string]any{"cniVersion": "1.0.0", "name": "slow", "plugins": []any{
		first, map[string]any{"type": "record", "recordFile": s.record, "waitFor": s.release},
	}})
	return s
}

// waitEntered waits until the slow delegate recorded an ADD: braid is in
// the middle of it, the bridge attached and its address leased.
func (s *slowNode) waitEntered(t *testing.T) {
	t.Helper()
	eventually(t, 30*time.Second, "the slow delegate's ADD started", func() error {
		data, _ := os.ReadFile(s.record)
		if !strings.Contains(string(data), `"command":"ADD"`) {
			return errors.New("not yet")
		}
		return nil
	})
}

// nothingLeft fails the test unless the sandbox has no interface, the
// networks no lease and braid no journal entry; with noStatus, the pod has
// no network-status either (its ADD never finished).
func (s *slowNode) nothingLeft(t *testing.T, sb *sandbox, noStatus bool) {
	t.Helper()
	released(t, s.node, sb, "slow")
	if !noStatus {
		return
	}
	if s.daemon != nil {
		s.daemon.waitStatusWritten()
	}
	if st, ok := s.getPod(sb.pod.Name).Annotations[nadv1.NetworkStatusAnnot]; ok {
		t.Errorf("network-status %s written for a pod whose ADD did not finish", st)
	}
}

// TestDelDuringAdd: a DEL that arrives while the same container's ADD is
// still in a slow delegate. In thick mode braidd cancels the ADD, which
// rolls back; the thin plugin (another process) waits for the ADD to end,
// then deletes it. Either way nothing is left.
func TestDelDuringAdd(t *testing.T) {
	inModes(t, func(t *testing.T, mode string) {
		s := newSlowNode(t, mode)
		sb := s.sandbox(s.createPod("p", map[string]string{nadv1.NetworkAttachmentAnnot: "slow"}))
		added := make(chan error, 1)
		go func() { _, err := sb.add(); added <- err }()
		s.waitEntered(t)

		deleted := make(chan error, 1)
		go func() { deleted <- sb.del() }()
		if mode == thin {
			select {
			case err := <-deleted:
				t.Fatalf("DEL returned (%v) while the same container's ADD still runs", err)
			case <-time.After(300 * time.Millisecond):
			}
			if err := os.WriteFile(s.release, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := <-added; err != nil {
				t.Errorf("thin ADD, let finish: %v", err)
			}
		} else if err := <-added; err == nil {
			t.Error("thick ADD succeeded, want it cancelled by the DEL")
		}
		if err := <-deleted; err != nil {
			t.Fatalf("DEL: %v", err)
		}
		// Thin: the ADD finished and wrote its status before the DEL ran
		// (which, like Multus's, leaves the annotation to the pod's end).
		s.nothingLeft(t, sb, mode == thick)
	})
}

// TestRuntimeGivesUp: the runtime stops waiting for an ADD (its deadline,
// kubelet cancelling the sandbox) and kills braid or the shim, then sends
// DEL. In thick mode braidd sees the connection go and rolls the ADD back
// at once; the thin plugin is killed mid-ADD and its journal lets the DEL
// release everything.
func TestRuntimeGivesUp(t *testing.T) {
	inModes(t, func(t *testing.T, mode string) {
		s := newSlowNode(t, mode)
		sb := s.sandbox(s.createPod("p", map[string]string{nadv1.NetworkAttachmentAnnot: "slow"}))
		ctx, cancel := context.WithCancel(context.Background())
		added := make(chan error, 1)
		go func() {
			c, list := s.runtime()
			_, err := c.AddNetworkList(ctx, list, sb.rt())
			added <- err
		}()
		s.waitEntered(t)
		cancel()
		if err := <-added; err == nil {
			t.Fatal("cancelled ADD succeeded")
		}
		if mode == thick {
			eventually(t, 30*time.Second, "braidd rolled the ADD back", func() error {
				if l := s.leases("slow"); len(l) != 0 {
					return errors.New("the slow network still leases " + strings.Join(l, " "))
				}
				if j := s.journal(); len(j) != 0 {
					return errors.New("journal still has " + strings.Join(j, " "))
				}
				return nil
			})
		}
		sb.mustDel()
		s.nothingLeft(t, sb, true)
	})
}
