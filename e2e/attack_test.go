package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"

	"github.com/braid-cni/braid/annotations"
	"github.com/braid-cni/braid/caller"
	"github.com/braid-cni/braid/plan"
)

// attacker is what a namespace user with NAD and pod rights controls on a
// node: a directory (say another of their pods' emptyDir) holding a
// "plugin" that leaves a marker when anything runs it as root, and a unix
// socket that records whether anybody connects.
type attacker struct {
	dir    string
	marker string // written by the attacker's binaries when run
	sock   string // daemonSocketDir the attacker names
	mu     sync.Mutex
	dialed bool
}

func newAttacker(t *testing.T) *attacker {
	t.Helper()
	a := &attacker{dir: t.TempDir()}
	a.marker = filepath.Join(a.dir, "pwned")
	a.sock = filepath.Join(a.dir, "sock")
	script := fmt.Sprintf("#!/bin/sh\nid > %s\necho '{}'\n", a.marker)
	for _, name := range []string{"bridge", "host-local", "braid", "braid-shim"} {
		if err := os.WriteFile(filepath.Join(a.dir, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeJSON(t, filepath.Join(a.dir, "cluster.conflist"), map[string]any{
		"cniVersion": "1.0.0", "name": "evil-cluster", "plugins": []any{map[string]any{"type": "bridge"}},
	})
	if err := os.MkdirAll(a.sock, 0o755); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("unix", filepath.Join(a.sock, "braid.sock"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			a.mu.Lock()
			a.dialed = true
			a.mu.Unlock()
			_ = c.Close()
		}
	}()
	return a
}

// braidKeys are the braid settings a nested braid would take from the
// attacker's config.
func (a *attacker) braidKeys(conf map[string]any) map[string]any {
	conf["binDir"] = a.dir
	conf["logFile"] = filepath.Join(a.dir, "braid.log")
	conf["cniDir"] = filepath.Join(a.dir, "cni")
	conf["clusterNetwork"] = filepath.Join(a.dir, "cluster.conflist")
	return conf
}

// untouched fails the test if anything of the attacker's ran, was written
// or was dialed.
func (a *attacker) untouched(t *testing.T) {
	t.Helper()
	if data, err := os.ReadFile(a.marker); err == nil {
		t.Errorf("the attacker's binary ran: %s", data)
	}
	for _, f := range []string{"braid.log", "cni"} {
		if _, err := os.Stat(filepath.Join(a.dir, f)); err == nil {
			t.Errorf("%s was created in the attacker's directory", f)
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.dialed {
		t.Error("the attacker's socket was dialed")
	}
}

// TestBraidNeverADelegate: the attacks a namespace user can mount with a
// NAD naming braid's own type are refused with code 7 before anything runs:
// no attacker binary runs as root, no file appears at the attacker's
// logFile, no attacker socket is dialed, nothing is attached, leased or
// journaled, and the pod gets an event. In thick mode an unrelated pod's
// ADD and DEL go through meanwhile: nothing holds braidd's slots.
func TestBraidNeverADelegate(t *testing.T) {
	inModes(t, func(t *testing.T, mode string) {
		tests := []struct {
			name string
			// nad is the attacker's NAD config; default marks it as the
			// pod's default network instead of a secondary one.
			nad     func(n *node, a *attacker) map[string]any
			dflt    bool
			want    []string      // in the error
			reason  string        // of the Warning event
			install func(n *node) // changes to the node, if any
		}{
			{
				name: "braid with binDir and logFile",
				nad: func(n *node, a *attacker) map[string]any {
					return a.braidKeys(map[string]any{"cniVersion": "1.0.0", "name": "evil", "type": "braid"})
				},
				want:   []string{`type is "braid"`, "braid never runs itself as a delegate"},
				reason: "InvalidNetworks",
			},
			{
				name: "braid with daemonSocketDir",
				nad: func(n *node, a *attacker) map[string]any {
					return map[string]any{"cniVersion": "1.0.0", "name": "evil", "type": "braid", "daemonSocketDir": a.sock}
				},
				want:   []string{`type is "braid"`},
				reason: "InvalidNetworks",
			},
			{
				name: "braid-shim second in a conflist",
				nad: func(n *node, a *attacker) map[string]any {
					first := n.bridgeNet("evil", 7, false)
					delete(first, "cniVersion")
					delete(first, "name")
					return map[string]any{"cniVersion": "1.0.0", "name": "evil", "plugins": []any{
						first, map[string]any{"type": "braid-shim", "daemonSocketDir": a.sock},
					}}
				},
				want:   []string{`plugins[1].type is "braid-shim"`},
				reason: "InvalidNetworks",
			},
			{
				name: "braid as the pod's default network",
				nad: func(n *node, a *attacker) map[string]any {
					return a.braidKeys(map[string]any{"cniVersion": "1.0.0", "name": "evil", "type": "braid"})
				},
				dflt:   true,
				want:   []string{`type is "braid"`},
				reason: "InvalidNetworks",
			},
			{
				// Past the type check: braid installed under another name.
				// The nested braid finds braid's mark and refuses.
				name:    "braid under another name",
				install: installRenamedBraid,
				nad: func(n *node, a *attacker) map[string]any {
					return a.braidKeys(map[string]any{"cniVersion": "1.0.0", "name": "evil", "type": "innocent"})
				},
				want:   []string{"called by braid", "braid never runs itself as a delegate"},
				reason: "AddFailed",
			},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				n := newNode(t, mode, "1.0.0")
				a := newAttacker(t)
				if tt.install != nil {
					tt.install(n)
				}
				n.createNAD(n.namespace, "blue", n.bridgeNet("blue", 1, false))
				annots := map[string]string{nadv1.NetworkAttachmentAnnot: "blue, evil"}
				if tt.dflt {
					name := fmt.Sprintf("evil-%d", n.id)
					n.createNAD("kube-system", name, tt.nad(n, a))
					t.Cleanup(func() { n.deleteNAD("kube-system", name) })
					annots = map[string]string{nadv1.NetworkAttachmentAnnot: "blue", annotations.DefaultNetworkKey: name}
				} else {
					n.createNAD(n.namespace, "evil", tt.nad(n, a))
				}
				victim := n.sandbox(n.createPod("victim", annots))

				// An unrelated pod, attached and deleted while the
				// attacks run: it must not wait on them.
				bystander := n.sandbox(n.createPod("bystander", map[string]string{nadv1.NetworkAttachmentAnnot: "blue"}))
				var wg sync.WaitGroup
				var bystanderErr error
				wg.Add(1)
				go func() {
					defer wg.Done()
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					defer cancel()
					c, list := n.runtime()
					if _, err := c.AddNetworkList(ctx, list, bystander.rt()); err != nil {
						bystanderErr = fmt.Errorf("ADD: %w", err)
						return
					}
					if err := c.DelNetworkList(ctx, list, bystander.rt()); err != nil {
						bystanderErr = fmt.Errorf("DEL: %w", err)
					}
				}()
				var err error
				for range 3 { // the kubelet retries
					if _, err = victim.add(); err == nil {
						break
					}
				}
				wg.Wait()
				if bystanderErr != nil {
					t.Errorf("the unrelated pod: %v", bystanderErr)
				}
				if err == nil {
					t.Fatal("ADD succeeded, want a refusal")
				}
				if got := cniCode(err); got != types.ErrInvalidNetworkConfig {
					t.Errorf("code = %d (%v), want 7", got, err)
				}
				for _, w := range tt.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not say %q", err, w)
					}
				}
				a.untouched(t)
				released(t, n, victim, "evil")
				ev := waitWarning(t, n, "victim", tt.reason)
				if !strings.Contains(ev.Message, "braid") {
					t.Errorf("%s event %q does not say why", tt.reason, ev.Message)
				}
				victim.mustDel()
				a.untouched(t)
			})
		}
	})
}

// TestMarkedBraidRefuses: braid, braid-shim and braidd refuse to act for a
// caller that carries braid's mark, as a delegate of braid would.
func TestMarkedBraidRefuses(t *testing.T) {
	inModes(t, func(t *testing.T, mode string) {
		n := newNode(t, mode, "1.0.0")
		sb := n.sandbox(n.createPod("p", nil))
		t.Setenv(caller.Env, "outer-container") // libcni passes the environment on
		_, err := sb.add()
		if got := cniCode(err); got != types.ErrInvalidNetworkConfig || !strings.Contains(err.Error(), "outer-container") {
			t.Errorf("marked ADD = %v, want code 7 naming the outer container", err)
		}
		if got := sb.links(); len(got) != 0 {
			t.Errorf("marked ADD attached %v", keys(got))
		}
		if l := n.leases("cluster"); len(l) != 0 {
			t.Errorf("marked ADD leased %v", l)
		}
	})
}

// installRenamedBraid puts braid on the node's bin path under the plugin
// type "innocent", as an operator who renamed the binary, or a plugin that
// runs braid from CNI_PATH, would.
func installRenamedBraid(n *node) {
	bin := filepath.Join(n.dir, "renamed-bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		n.t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(shared.braidDir, "braid"), filepath.Join(bin, "innocent")); err != nil {
		n.t.Fatal(err)
	}
	n.braidConf["binDir"] = bin + ":" + shared.pluginsDir
}

// TestLoopingJournalTornDown: a journal entry that holds an attachment
// running braid (written before braid refused such configs, or planted)
// does not make the pod impossible to tear down: the nested braid refuses
// under the mark, which DEL takes as a config that attached nothing, and
// the rest of the pod is released.
func TestLoopingJournalTornDown(t *testing.T) {
	inModes(t, func(t *testing.T, mode string) {
		n := newNode(t, mode, "1.0.0")
		installRenamedBraid(n)
		sb := n.sandbox(n.createPod("p", nil))
		sb.mustAdd()
		if l := n.leases("cluster"); len(l) != 1 {
			t.Fatalf("cluster leases %v, want one", l)
		}
		path := filepath.Join(n.cniDir, sb.containerID)
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		p, err := plan.Unmarshal(data)
		if err != nil {
			t.Fatal(err)
		}
		// A nested braid with this pod's own settings would plan the pod
		// again, and DEL it again, without end.
		looping, err := json.Marshal(map[string]any{"cniVersion": "1.0.0", "name": "loop", "type": "innocent",
			"clusterNetwork": n.braidConf["clusterNetwork"], "cniDir": n.cniDir, "kubeconfig": shared.kubeconfig})
		if err != nil {
			t.Fatal(err)
		}
		p.Attachments = append(p.Attachments, plan.Attachment{IfName: "net1", Network: n.namespace + "/loop", Config: looping})
		if data, err = p.Marshal(); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
		defer cancel()
		c, list := n.runtime()
		if err := c.DelNetworkList(ctx, list, sb.rt()); err != nil {
			t.Fatalf("DEL of a pod whose journal runs braid: %v", err)
		}
		released(t, n, sb)
	})
}
