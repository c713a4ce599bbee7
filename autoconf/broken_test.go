package autoconf

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/braid-cni/braid/install"
)

const (
	flannelFile = "10-flannel.conflist"
	// flannelV2 is flannel rewritten: a new version and capability, so
	// braid's file must change to follow it.
	flannelV2 = `{"cniVersion":"1.1.0","name":"cbr0","plugins":[{"type":"flannel"},{"type":"bandwidth","capabilities":{"bandwidth":true}}]}`
	shim      = `{"cniVersion":"1.0.0","name":"thick","plugins":[{"type":"braid-shim","daemonSocketDir":"/run/braid"}]}`
)

// brokenContents are ways a primary config looks while its installer
// rewrites it in place.
func brokenContents() []struct{ name, content string } {
	return []struct{ name, content string }{
		{"empty", ""},
		{"half written", flannel[:len(flannel)/2]},
		{"no name yet", `{"cniVersion":"1.0.0","plugins":[{"type":"flannel"}]}`},
	}
}

func readOwn(t *testing.T, w *Writer) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(w.Dir, own))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestSyncKeepsBrokenPrimary: while the primary braid wraps is there but
// does not parse, Sync reports it and leaves braid's file byte for byte,
// whether or not a later valid config could take over; once the primary
// is whole again, braid's file follows it.
func TestSyncKeepsBrokenPrimary(t *testing.T) {
	for _, broken := range brokenContents() {
		for _, later := range []bool{false, true} {
			name := broken.name
			if later {
				name += ", a later config present"
			}
			t.Run(name, func(t *testing.T) {
				w := writer(t)
				write(t, w.Dir, flannelFile, flannel)
				if later {
					write(t, w.Dir, "20-calico.conflist", calico)
				}
				if changed, err := w.Sync(); err != nil || !changed {
					t.Fatalf("Sync = %v, %v; want written", changed, err)
				}
				before := readOwn(t, w)

				write(t, w.Dir, flannelFile, broken.content)
				// Every retry finds the same and changes nothing.
				for range 3 {
					changed, err := w.Sync()
					var held *install.BrokenPrimaryError
					if !errors.As(err, &held) || held.Path != filepath.Join(w.Dir, flannelFile) || changed {
						t.Fatalf("Sync with %s %s = %v, %v; want a *BrokenPrimaryError for it, nothing changed", broken.name, flannelFile, changed, err)
					}
					if after := readOwn(t, w); !bytes.Equal(after, before) {
						t.Fatalf("braid config changed while its primary was %s:\n%s\nwant\n%s", broken.name, after, before)
					}
				}

				write(t, w.Dir, flannelFile, flannelV2)
				if changed, err := w.Sync(); err != nil || !changed {
					t.Fatalf("Sync with the primary whole again = %v, %v; want written", changed, err)
				}
				cluster, caps, version, _ := braidEntry(t, w)
				if cluster != "/etc/cni/net.d/"+flannelFile || !caps["bandwidth"] || caps["portMappings"] || version != "1.1.0" {
					t.Errorf("braid config after the rewrite wraps %s caps %v version %s; want the new flannel", cluster, caps, version)
				}
			})
		}
	}
}

// TestSyncPrimaryGone: a primary that is removed, also while broken,
// still removes braid's file or hands over to the next config; a broken
// config braid does not wrap is passed over, and a config that sorts
// first takes over once it is whole.
func TestSyncPrimaryGone(t *testing.T) {
	type change struct {
		file, content string // written unless remove
		remove        bool
	}
	tests := []struct {
		name    string
		changes []change // on a directory where braid wraps flannel; each followed by a Sync
		want    string   // the file braid's config wraps at the end; "" wants it removed
	}{
		{"the only primary removed", []change{{file: flannelFile, remove: true}}, ""},
		{"the only primary removed while broken", []change{{file: flannelFile, content: "{"}, {file: flannelFile, remove: true}}, ""},
		{"the primary removed, the next takes over", []change{{file: "20-calico.conflist", content: calico}, {file: flannelFile, remove: true}}, "20-calico.conflist"},
		{"the primary removed while broken, the next takes over", []change{
			{file: "20-calico.conflist", content: calico}, {file: flannelFile, content: ""}, {file: flannelFile, remove: true}}, "20-calico.conflist"},
		{"the primary became a braid config", []change{{file: "20-calico.conflist", content: calico}, {file: flannelFile, content: shim}}, "20-calico.conflist"},
		{"a new config still being written is passed over", []change{{file: "05-calico.conflist", content: ""}}, flannelFile},
		{"a new config takes over once whole", []change{{file: "05-calico.conflist", content: ""}, {file: "05-calico.conflist", content: calico}}, "05-calico.conflist"},
		{"a valid config before the broken primary takes over", []change{{file: flannelFile, content: ""}, {file: "05-calico.conflist", content: calico}}, "05-calico.conflist"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := writer(t)
			write(t, w.Dir, flannelFile, flannel)
			if _, err := w.Sync(); err != nil {
				t.Fatal(err)
			}
			var err error
			for _, c := range tt.changes {
				if c.remove {
					if err := os.Remove(filepath.Join(w.Dir, c.file)); err != nil {
						t.Fatal(err)
					}
				} else {
					write(t, w.Dir, c.file, c.content)
				}
				_, err = w.Sync()
			}
			if err != nil {
				t.Fatalf("last Sync: %v", err)
			}
			if tt.want == "" {
				if _, err := os.Stat(filepath.Join(w.Dir, own)); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("braid config after the primary went: %v; want it removed", err)
				}
				return
			}
			if got := wrapped(w); got != "/etc/cni/net.d/"+tt.want {
				t.Errorf("braid config wraps %q, want %s", got, tt.want)
			}
		})
	}
}

// TestSyncBackoff: a failed sync is retried after retryFirst, then at
// doubling intervals bounded by retryMax; a sync that succeeds ends the
// retries.
func TestSyncBackoff(t *testing.T) {
	w := writer(t)
	write(t, w.Dir, flannelFile, flannel)
	if next := w.sync(0); next != 0 {
		t.Fatalf("a sync that succeeded schedules a retry in %v", next)
	}
	write(t, w.Dir, flannelFile, "")
	tests := []struct{ prev, want time.Duration }{
		{0, retryFirst},
		{retryFirst, 2 * retryFirst},
		{retryMax/2 + time.Second, retryMax},
		{retryMax, retryMax},
	}
	for _, tt := range tests {
		if got := w.sync(tt.prev); got != tt.want {
			t.Errorf("failed sync after a retry delay of %v: next in %v, want %v", tt.prev, got, tt.want)
		}
	}
	write(t, w.Dir, flannelFile, flannel)
	if next := w.sync(retryMax); next != 0 {
		t.Errorf("a sync that succeeded after failures schedules a retry in %v", next)
	}
}

// TestRunKeepsBrokenPrimary: a real Run with its primary truncated in
// place keeps braid's file as it was, warns about the file again on its
// own (the periodic retry: no change in the directory prompts it) and
// follows the primary once it is rewritten.
func TestRunKeepsBrokenPrimary(t *testing.T) {
	w := writer(t)
	logs := &logRecords{}
	w.Log = slog.New(slog.NewJSONHandler(logs, nil))
	write(t, w.Dir, flannelFile, flannel)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	eventually(t, "braid config for flannel", func() bool {
		return wrapped(w) == "/etc/cni/net.d/"+flannelFile
	})
	before := readOwn(t, w)

	path := filepath.Join(w.Dir, flannelFile)
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	var warnings []map[string]any
	for len(warnings) < 2 {
		if after, err := os.ReadFile(filepath.Join(w.Dir, own)); err != nil || !bytes.Equal(after, before) {
			t.Fatalf("braid config while its primary was truncated: %v\n%s\nwant\n%s", err, after, before)
		}
		if time.Now().After(deadline) {
			t.Fatalf("warnings naming %s: %v; want two, the second from the periodic retry", path, warnings)
		}
		time.Sleep(10 * time.Millisecond)
		warnings = logs.warnings(path)
	}
	// JSON encodes durations in nanoseconds.
	if warnings[0]["retry"] != float64(retryFirst) || warnings[1]["retry"] != float64(2*retryFirst) {
		t.Errorf("retries announced in %v, then %v; want %v, then %v", warnings[0]["retry"], warnings[1]["retry"], retryFirst, 2*retryFirst)
	}

	write(t, w.Dir, flannelFile, flannelV2)
	eventually(t, "braid config for the rewritten flannel", func() bool {
		data, err := os.ReadFile(filepath.Join(w.Dir, own))
		return err == nil && bytes.Contains(data, []byte(`"bandwidth": true`))
	})
}

// logRecords collects a JSON slog handler's output, safe for the test to
// read while Run writes.
type logRecords struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logRecords) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// warnings returns the WARN records whose primary is path.
func (l *logRecords) warnings(path string) []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	lines := bufio.NewScanner(bytes.NewReader(l.buf.Bytes()))
	for lines.Scan() {
		var rec map[string]any
		if json.Unmarshal(lines.Bytes(), &rec) == nil && rec["level"] == "WARN" && rec["primary"] == path {
			out = append(out, rec)
		}
	}
	return out
}
