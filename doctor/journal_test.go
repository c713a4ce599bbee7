package doctor

import (
	"encoding/json"
	"errors"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/skel"

	"github.com/braid-cni/braid/journal"
	"github.com/braid-cni/braid/netconf"
	"github.com/braid-cni/braid/plan"
)

// journalFixture writes entries: "gone" (netns path missing), "file" (a
// regular file, not a netns), "live" (this process's netns), "opaque"
// (not a plan) and "nonetns" (no netns recorded).
func journalFixture(t *testing.T) (*netconf.NetConf, *journal.Store) {
	t.Helper()
	dir := t.TempDir()
	notNS := filepath.Join(dir, "not-a-netns")
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
	if err := store.Write("opaque", []byte("{")); err != nil {
		t.Fatal(err)
	}
	return &netconf.NetConf{CNIDir: store.Dir}, store
}

var braidFile = &BraidFile{Path: "00-braid.conflist", Plugin: []byte(`{"cniVersion":"1.0.0","name":"braid-net","type":"braid"}`)}

func TestCheckJournalFindsStale(t *testing.T) {
	conf, _ := journalFixture(t)
	got := CheckJournal(braidFile, conf, Options{})
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
	got := CheckJournal(braidFile, &netconf.NetConf{CNIDir: filepath.Join(dir, "none")}, Options{})
	if got.Status != OK || !strings.Contains(got.Detail, "0 entries") {
		t.Errorf("CheckJournal = %+v, want ok with no entries", got)
	}
}

func TestCheckJournalFix(t *testing.T) {
	conf, store := journalFixture(t)
	var calls []*skel.CmdArgs
	del := func(args *skel.CmdArgs) error {
		calls = append(calls, args)
		return store.Remove(args.ContainerID)
	}
	got := CheckJournal(braidFile, conf, Options{Fix: true, Del: del})
	if got.Status != OK || !strings.Contains(got.Detail, "released file (pod ns1/pod-file), gone (pod ns1/pod-gone)") {
		t.Errorf("CheckJournal --fix = %+v", got)
	}
	if len(calls) != 2 {
		t.Fatalf("%d DELs, want 2", len(calls))
	}
	c := calls[1]
	if c.ContainerID != "gone" || !strings.HasSuffix(c.Netns, "/netns/gone") || c.IfName != "eth0" ||
		c.Args != "K8S_POD_NAMESPACE=ns1;K8S_POD_NAME=pod-gone" || string(c.StdinData) != string(braidFile.Plugin) {
		t.Errorf("DEL args %+v", c)
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
		del        func(*skel.CmdArgs) error
		wantDetail string
	}{
		{"DEL fails", func(*skel.CmdArgs) error { return errors.New("bridge: boom") }, "DEL failed for file: bridge: boom"},
		{"entry left behind", func(*skel.CmdArgs) error { return nil }, "entry still there after DEL"},
		{"no DEL", nil, "no DEL configured"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conf, store := journalFixture(t)
			got := CheckJournal(braidFile, conf, Options{Fix: true, Del: tt.del})
			if got.Status != Fail || !strings.Contains(got.Detail, tt.wantDetail) || got.Fix == "" {
				t.Errorf("CheckJournal --fix = %+v, want fail containing %q", got, tt.wantDetail)
			}
			if _, err := store.Read("gone"); errors.Is(err, fs.ErrNotExist) {
				t.Errorf("entry gone although its DEL failed")
			}
		})
	}
}
