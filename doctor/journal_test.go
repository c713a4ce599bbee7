package doctor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/braid-cni/braid/attacher"
	"github.com/braid-cni/braid/journal"
	"github.com/braid-cni/braid/netconf"
	"github.com/braid-cni/braid/plan"
)

// journalFixture writes entries: "gone" (netns path missing from a
// directory that is there), "file" (a regular file, not a netns), "live"
// (this process's netns), "opaque" (not a plan), "nonetns" (no netns
// recorded) and, with withNoDir, "nodir" (the netns path's directory is not
// there: not mounted where doctor runs).
func journalFixture(t *testing.T, withNoDir bool) (*netconf.NetConf, *journal.Store) {
	t.Helper()
	dir := t.TempDir()
	notNS := filepath.Join(dir, "netns", "not-a-netns")
	writeFile(t, notNS, "")
	store := journal.New(filepath.Join(dir, "braid"))
	entry := func(id, netns string) {
		p := &plan.Plan{
			Version: plan.Version, ContainerID: id, NetNS: netns, IfName: "eth0",
			Args: [][2]string{{"K8S_POD_NAMESPACE", "ns1"}, {"K8S_POD_NAME", "pod-" + id}},
			Pod:  plan.PodRef{Namespace: "ns1", Name: "pod-" + id},
			Attachments: []plan.Attachment{{IfName: "eth0", Network: "cluster", Cluster: true,
				Config: json.RawMessage(`{"cniVersion":"1.0.0","name":"cluster","type":"bridge"}`)}},
		}
		data, err := p.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if err := store.Write(id, data); err != nil {
			t.Fatal(err)
		}
	}
	entry("gone", filepath.Join(dir, "netns", "gone"))
	entry("file", notNS)
	entry("live", "/proc/self/ns/net")
	entry("nonetns", "")
	if withNoDir {
		entry("nodir", filepath.Join(dir, "other-mount-ns", "netns", "cni-1"))
	}
	if err := store.Write("opaque", []byte("{")); err != nil {
		t.Fatal(err)
	}
	return &netconf.NetConf{CNIDir: store.Dir}, store
}

// onHost is the view from the runtime's mount and PID namespaces.
func onHost() error { return nil }

// elsewhere is the view from a container.
func elsewhere() error {
	return errors.New("not in the node's PID namespace (this process is in pid:[4026532201])")
}

var braidFile = &BraidFile{Path: "00-braid.conflist", Plugin: []byte(`{"cniVersion":"1.0.0","name":"braid-net","type":"braid"}`)}

func TestCheckJournalFindsStale(t *testing.T) {
	conf, _ := journalFixture(t, false)
	got := CheckJournal(context.Background(), conf, Options{HostView: onHost})
	if got.Status != Warn || got.Fix == "" {
		t.Fatalf("CheckJournal = %+v, want a warning with a fix", got)
	}
	for _, want := range []string{"5 entries", "2 stale", "file (pod ns1/pod-file)", "gone (pod ns1/pod-gone)", "1 unreadable: opaque"} {
		if !strings.Contains(got.Detail, want) {
			t.Errorf("detail %q lacks %q", got.Detail, want)
		}
	}
	for _, healthy := range []string{"live", "nonetns"} {
		if strings.Contains(got.Detail, healthy+" (pod") {
			t.Errorf("detail %q names healthy entry %s", got.Detail, healthy)
		}
	}
}

func TestCheckJournalHealthy(t *testing.T) {
	dir := t.TempDir()
	got := CheckJournal(context.Background(), &netconf.NetConf{CNIDir: filepath.Join(dir, "none")}, Options{HostView: onHost})
	if got.Status != OK || !strings.Contains(got.Detail, "0 entries") {
		t.Errorf("CheckJournal = %+v, want ok with no entries", got)
	}
}

func TestCheckJournalFix(t *testing.T) {
	conf, store := journalFixture(t, false)
	var calls []attacher.Request
	var confs []*netconf.NetConf
	del := func(_ context.Context, c *netconf.NetConf, req attacher.Request) error {
		calls = append(calls, req)
		confs = append(confs, c)
		return store.Remove(req.ContainerID)
	}
	got := CheckJournal(context.Background(), conf, Options{Fix: true, Del: del, HostView: onHost})
	if got.Status != OK || !strings.Contains(got.Detail, "released file (pod ns1/pod-file), gone (pod ns1/pod-gone)") {
		t.Errorf("CheckJournal --fix = %+v", got)
	}
	if len(calls) != 2 {
		t.Fatalf("%d DELs, want 2", len(calls))
	}
	c := calls[1]
	if c.ContainerID != "gone" || !strings.HasSuffix(c.NetNS, "/netns/gone") || c.IfName != "eth0" ||
		c.Pod != (plan.PodRef{Namespace: "ns1", Name: "pod-gone"}) || confs[1] != conf {
		t.Errorf("DEL request %+v with config %p, want the journaled one with %p", c, confs[1], conf)
	}
	ids, err := store.List()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids, []string{"live", "nonetns", "opaque"}) {
		t.Errorf("journal after --fix: %v", ids)
	}
}

func TestCheckJournalFixFailures(t *testing.T) {
	tests := []struct {
		name       string
		del        func(context.Context, *netconf.NetConf, attacher.Request) error
		wantDetail string
	}{
		{"DEL fails", func(context.Context, *netconf.NetConf, attacher.Request) error { return errors.New("bridge: boom") }, "DEL failed for file: bridge: boom"},
		{"entry left behind", func(context.Context, *netconf.NetConf, attacher.Request) error { return nil }, "entry still there after DEL"},
		{"no DEL", nil, "no DEL configured"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conf, store := journalFixture(t, false)
			got := CheckJournal(context.Background(), conf, Options{Fix: true, Del: tt.del, HostView: onHost})
			if got.Status != Fail || !strings.Contains(got.Detail, tt.wantDetail) || got.Fix == "" {
				t.Errorf("CheckJournal --fix = %+v, want fail containing %q", got, tt.wantDetail)
			}
			if _, err := store.Read("gone"); errors.Is(err, fs.ErrNotExist) {
				t.Errorf("entry gone although its DEL failed")
			}
		})
	}
}

// TestCheckJournalUnseen: an entry whose netns doctor cannot see as the
// runtime does is named, with what to do, and --fix never DELs it.
func TestCheckJournalUnseen(t *testing.T) {
	tests := []struct {
		name      string
		view      func() error
		wantStale []string // released by --fix
		wantNot   []string // named as not judged
	}{
		{
			name:      "on the host, one directory missing",
			view:      onHost,
			wantStale: []string{"file", "gone"},
			wantNot:   []string{"nodir"},
		},
		{
			name:    "from a container",
			view:    elsewhere,
			wantNot: []string{"file", "gone", "nodir"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conf, store := journalFixture(t, true)
			got := CheckJournal(context.Background(), conf, Options{HostView: tt.view})
			if got.Status != Warn || !strings.Contains(got.Fix, "run braidctl doctor on the host") {
				t.Errorf("CheckJournal = %+v, want a warning telling to run doctor on the host", got)
			}
			want := fmt.Sprintf("%d not judged", len(tt.wantNot))
			if !strings.Contains(got.Detail, want) {
				t.Errorf("detail %q lacks %q", got.Detail, want)
			}
			for _, id := range tt.wantNot {
				if !strings.Contains(got.Detail, id+" (pod ns1/pod-"+id+"): cannot see netns ") {
					t.Errorf("detail %q does not say it cannot see %s's netns", got.Detail, id)
				}
			}

			var dels []string
			del := func(_ context.Context, _ *netconf.NetConf, req attacher.Request) error {
				dels = append(dels, req.ContainerID)
				return store.Remove(req.ContainerID)
			}
			got = CheckJournal(context.Background(), conf, Options{Fix: true, Del: del, HostView: tt.view})
			if !slices.Equal(dels, tt.wantStale) {
				t.Errorf("--fix DELs %q, want %q", dels, tt.wantStale)
			}
			if got.Status != Warn || !strings.Contains(got.Detail, want) || !strings.Contains(got.Fix, "run braidctl doctor on the host") {
				t.Errorf("CheckJournal --fix = %+v, want a warning naming what it did not judge", got)
			}
			for _, id := range tt.wantNot {
				if _, err := store.Read(id); err != nil {
					t.Errorf("entry %s: %v, want it kept", id, err)
				}
			}
		})
	}
}

// TestCheckJournalOrphans: a completed record whose entry a crash during
// DEL removed is named, and deleted with --fix; the check's status stays
// what the entries make it.
func TestCheckJournalOrphans(t *testing.T) {
	store := journal.New(filepath.Join(t.TempDir(), "braid"))
	for _, id := range []string{"live", "crashed"} {
		p := &plan.Plan{Version: plan.Version, ContainerID: id, NetNS: "/proc/self/ns/net", IfName: "eth0",
			Attachments: []plan.Attachment{{IfName: "eth0", Network: "cluster", Cluster: true, Config: json.RawMessage(`{"type":"bridge"}`)}}}
		if err := store.Save(p); err != nil {
			t.Fatal(err)
		}
		p.Attachments[0].Result = json.RawMessage(`{"cniVersion":"1.0.0"}`)
		if err := store.Update(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Remove(filepath.Join(store.Dir, "crashed")); err != nil {
		t.Fatal(err)
	}
	conf := &netconf.NetConf{CNIDir: store.Dir}
	got := CheckJournal(context.Background(), conf, Options{HostView: onHost})
	if got.Status != OK || !strings.Contains(got.Detail, "1 completed records without an entry") || !strings.Contains(got.Detail, "crashed") {
		t.Errorf("CheckJournal = %+v, want ok naming the orphan", got)
	}
	if ids, err := store.Orphans(); err != nil || !slices.Equal(ids, []string{"crashed"}) {
		t.Errorf("orphans without --fix = %q, %v; want [crashed] kept", ids, err)
	}
	got = CheckJournal(context.Background(), conf, Options{Fix: true, HostView: onHost})
	if got.Status != OK || !strings.Contains(got.Detail, "deleted 1 completed records without an entry (crashed)") {
		t.Errorf("CheckJournal --fix = %+v, want the orphan deleted", got)
	}
	if ids, err := store.Orphans(); err != nil || len(ids) != 0 {
		t.Errorf("orphans after --fix = %q, %v; want none", ids, err)
	}
	if p, err := store.Load("live"); err != nil || len(p.Attachments[0].Result) == 0 {
		t.Errorf("live's plan after --fix = %+v, %v; want it with its result", p, err)
	}
}
