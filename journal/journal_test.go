package journal

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/braid-cni/braid/internal/testutil"
	"github.com/braid-cni/braid/plan"
)

const cid = "3f4e0c5b9a1d2e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f"

func TestWriteRead(t *testing.T) {
	tests := []struct {
		name   string
		writes [][]byte
		want   []byte
	}{
		{name: "round trip", writes: [][]byte{[]byte(`{"a":1}`)}, want: []byte(`{"a":1}`)},
		{name: "empty data", writes: [][]byte{{}}, want: []byte{}},
		{name: "overwrite replaces", writes: [][]byte{[]byte("old and longer"), []byte("new")}, want: []byte("new")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(filepath.Join(t.TempDir(), "journal"))
			for _, w := range tt.writes {
				if err := s.Write(cid, w); err != nil {
					t.Fatalf("Write: %v", err)
				}
			}
			got, err := s.Read(cid)
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			if !bytes.Equal(got, tt.want) {
				t.Errorf("Read = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestWritePermissionsAndNoTempFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "journal")
	s := New(dir)
	if err := s.Write(cid, []byte("x")); err != nil {
		t.Fatalf("Write: %v", err)
	}
	if err := s.Write(cid, []byte("y")); err != nil {
		t.Fatalf("second Write: %v", err)
	}

	di, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := di.Mode().Perm(); got != 0o700 {
		t.Errorf("dir mode = %o, want 700", got)
	}
	fi, err := os.Stat(filepath.Join(dir, cid))
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("file mode = %o, want 600", got)
	}
	if got := testutil.DirNames(t, dir); !slices.Equal(got, []string{cid}) {
		t.Errorf("dir holds %q, want only %q", got, cid)
	}
}

// TestLeftoverTempFile simulates a crash between CreateTemp and Rename.
func TestLeftoverTempFile(t *testing.T) {
	s := New(t.TempDir())
	if err := s.Write(cid, []byte("old")); err != nil {
		t.Fatalf("Write: %v", err)
	}
	leftover := filepath.Join(s.Dir, "."+cid+".tmp123456")
	if err := os.WriteFile(leftover, []byte("half-written new"), 0o600); err != nil {
		t.Fatal(err)
	}

	ids, err := s.List()
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if !slices.Equal(ids, []string{cid}) {
		t.Errorf("List = %q, want [%q]", ids, cid)
	}
	got, err := s.Read(cid)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	if string(got) != "old" {
		t.Errorf("Read = %q, want %q", got, "old")
	}
}

func TestWriteFailureLeavesNothing(t *testing.T) {
	tests := []struct {
		name string
		// setup returns the Store's Dir and the directory to check for leftovers.
		setup    func(t *testing.T) (dir, watch string)
		rootSkip bool
	}{
		{
			name: "read-only dir",
			setup: func(t *testing.T) (string, string) {
				dir := t.TempDir()
				if err := os.Chmod(dir, 0o500); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = os.Chmod(dir, 0o700) })
				return dir, dir
			},
			// root ignores directory permissions, so the Write would succeed.
			rootSkip: true,
		},
		{
			name: "dir is a regular file",
			setup: func(t *testing.T) (string, string) {
				parent := t.TempDir()
				dir := filepath.Join(parent, "journal")
				if err := os.WriteFile(dir, []byte("not a dir"), 0o600); err != nil {
					t.Fatal(err)
				}
				return dir, parent
			},
		},
		{
			// CreateTemp succeeds and the rename fails, so the temp file
			// must be cleaned up.
			name: "entry path is a directory",
			setup: func(t *testing.T) (string, string) {
				dir := t.TempDir()
				mkdir(t, filepath.Join(dir, cid))
				touch(t, filepath.Join(dir, cid, "keep"))
				return dir, dir
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.rootSkip && os.Geteuid() == 0 {
				t.Skip("root bypasses directory permissions")
			}
			dir, watch := tt.setup(t)
			before := testutil.DirNames(t, watch)
			s := New(dir)
			err := s.Write(cid, []byte("x"))
			if err == nil {
				t.Fatal("Write succeeded, want error")
			}
			if !strings.Contains(err.Error(), cid) {
				t.Errorf("error %q does not name the id", err)
			}
			if after := testutil.DirNames(t, watch); !slices.Equal(before, after) {
				t.Errorf("Write left files behind: before %q, after %q", before, after)
			}
		})
	}
}

func TestReadMissing(t *testing.T) {
	s := New(t.TempDir())
	_, err := s.Read(cid)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Read of missing entry: err = %v, want fs.ErrNotExist", err)
	}
	if !strings.Contains(err.Error(), cid) {
		t.Errorf("error %q does not name the id", err)
	}
}

func TestRemove(t *testing.T) {
	s := New(t.TempDir())
	if err := s.Write(cid, []byte("x")); err != nil {
		t.Fatalf("Write: %v", err)
	}
	for i := range 2 {
		if err := s.Remove(cid); err != nil {
			t.Fatalf("Remove #%d: %v", i+1, err)
		}
	}
	if _, err := s.Read(cid); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Read after Remove: err = %v, want fs.ErrNotExist", err)
	}
	if err := New(filepath.Join(t.TempDir(), "missing")).Remove(cid); err != nil {
		t.Errorf("Remove in missing dir: %v", err)
	}
}

func TestList(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, s *Store)
		want  []string
	}{
		{
			name:  "missing dir",
			setup: func(t *testing.T, s *Store) { s.Dir = filepath.Join(s.Dir, "missing") },
			want:  []string{},
		},
		{
			name:  "empty dir",
			setup: func(t *testing.T, s *Store) {},
			want:  []string{},
		},
		{
			name: "sorted, skips results dir, temp and hidden files",
			setup: func(t *testing.T, s *Store) {
				for _, id := range []string{"c", cid, "a"} {
					if err := s.Write(id, []byte(id)); err != nil {
						t.Fatal(err)
					}
				}
				mkdir(t, filepath.Join(s.Dir, "results"))
				touch(t, filepath.Join(s.Dir, "results", "braid-net-"+cid+"-eth0"))
				touch(t, filepath.Join(s.Dir, "."+cid+".tmp42"))
				touch(t, filepath.Join(s.Dir, ".hidden"))
			},
			want: []string{cid, "a", "c"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(t.TempDir())
			tt.setup(t, s)
			got, err := s.List()
			if err != nil {
				t.Fatalf("List: %v", err)
			}
			if got == nil || !slices.Equal(got, tt.want) {
				t.Errorf("List = %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestInvalidIDs(t *testing.T) {
	tests := []struct {
		name string
		id   string
	}{
		{name: "empty", id: ""},
		{name: "dot", id: "."},
		{name: "dot dot", id: ".."},
		{name: "leading dot", id: ".abc"},
		{name: "temp name", id: "." + cid + ".tmp1"},
		{name: "slash", id: "a/b"},
		{name: "traversal", id: "../etc"},
		{name: "absolute", id: "/abc"},
		{name: "NUL", id: "a\x00b"},
		{name: "too long", id: strings.Repeat("a", maxIDLen+1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(t.TempDir())
			ops := map[string]error{
				"Write":  s.Write(tt.id, []byte("x")),
				"Remove": s.Remove(tt.id),
			}
			_, ops["Read"] = s.Read(tt.id)
			for op, err := range ops {
				if err == nil {
					t.Errorf("%s(%q) succeeded, want error", op, tt.id)
					continue
				}
				if want := fmt.Sprintf("invalid id %q", tt.id); !strings.Contains(err.Error(), want) {
					t.Errorf("%s(%q) error %q does not contain %q", op, tt.id, err, want)
				}
			}
			if names := testutil.DirNames(t, s.Dir); len(names) != 0 {
				t.Errorf("dir holds %q after rejected writes", names)
			}
		})
	}
}

func TestValidIDs(t *testing.T) {
	for _, id := range []string{cid, "a", "not-hex_ID.1", strings.Repeat("f", maxIDLen)} {
		if err := validateID(id); err != nil {
			t.Errorf("validateID(%q) = %v, want nil", id, err)
		}
	}
}

func mkdir(t *testing.T, path string) {
	t.Helper()
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
}

func touch(t *testing.T, path string) {
	t.Helper()
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestSaveLoad: a saved plan loads back as written; a missing entry is
// fs.ErrNotExist, a broken one an error.
func TestSaveLoad(t *testing.T) {
	store := New(t.TempDir())
	p := intent("c1")
	if err := store.Save(p); err != nil {
		t.Fatal(err)
	}
	got, err := store.Load("c1")
	if err != nil || !reflect.DeepEqual(got, p) {
		t.Errorf("Load = %+v, %v; want %+v", got, err, p)
	}
	if _, err := store.Load("c2"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load of a missing entry = %v, want fs.ErrNotExist", err)
	}
	if err := store.Write("c3", []byte(`{"version":1}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Load("c3"); err == nil {
		t.Error("Load of a plan without container ID succeeded")
	}
}

// intent is a plan of two attachments without results, as ADD saves it
// before the first delegate runs.
func intent(id string) *plan.Plan {
	return &plan.Plan{Version: plan.Version, ContainerID: id, IfName: "eth0", Attachments: []plan.Attachment{
		{IfName: "eth0", Network: "cluster", Cluster: true, Config: json.RawMessage(`{"type":"ptp"}`)},
		{IfName: "net1", Network: "ns/blue", Selected: true, Config: json.RawMessage(`{"type":"bridge"}`)},
	}}
}

// completed is p with a result on every attachment.
func completed(p *plan.Plan) *plan.Plan {
	q := *p
	q.Attachments = slices.Clone(p.Attachments)
	for i := range q.Attachments {
		q.Attachments[i].Result = json.RawMessage(fmt.Sprintf(`{"cniVersion":"1.0.0","interfaces":[{"name":%q}]}`, q.Attachments[i].IfName))
	}
	return &q
}

// TestCompleted: the plan with results that Update records is what Load
// returns while it agrees with the entry; a record a crash of the node cut
// short, or one that names an attachment the entry lacks, gives way to the
// entry, which keeps every attachment DEL must delete. Save drops the
// record; Remove and Prune delete it.
func TestCompleted(t *testing.T) {
	tests := []struct {
		name string
		// after Save(intent) and Update(completed(intent)), change what is
		// on disk; it returns what Load must return then.
		change func(t *testing.T, s *Store, entry, done *plan.Plan) *plan.Plan
	}{
		{
			name:   "recorded",
			change: func(t *testing.T, s *Store, entry, done *plan.Plan) *plan.Plan { return done },
		},
		{
			name: "hot-plug dropped an attachment",
			change: func(t *testing.T, s *Store, entry, done *plan.Plan) *plan.Plan {
				fewer := *done
				fewer.Attachments = done.Attachments[:1]
				if err := s.Update(&fewer); err != nil {
					t.Fatal(err)
				}
				return &fewer
			},
		},
		{
			name: "cut short by a crash",
			change: func(t *testing.T, s *Store, entry, done *plan.Plan) *plan.Plan {
				writeCompleted(t, s, entry.ContainerID, marshal(t, done)[:40])
				return entry
			},
		},
		{
			name: "empty after a crash",
			change: func(t *testing.T, s *Store, entry, done *plan.Plan) *plan.Plan {
				writeCompleted(t, s, entry.ContainerID, nil)
				return entry
			},
		},
		{
			name: "an attachment the entry lacks",
			change: func(t *testing.T, s *Store, entry, done *plan.Plan) *plan.Plan {
				other := completed(entry)
				other.Attachments[1].Config = json.RawMessage(`{"type":"macvlan"}`)
				writeCompleted(t, s, entry.ContainerID, marshal(t, other))
				return entry
			},
		},
		{
			name: "another container's",
			change: func(t *testing.T, s *Store, entry, done *plan.Plan) *plan.Plan {
				writeCompleted(t, s, entry.ContainerID, marshal(t, completed(intent("other"))))
				return entry
			},
		},
		{
			name: "saved again",
			change: func(t *testing.T, s *Store, entry, done *plan.Plan) *plan.Plan {
				again := intent(entry.ContainerID)
				again.Attachments = again.Attachments[:1]
				if err := s.Save(again); err != nil {
					t.Fatal(err)
				}
				if _, err := os.Stat(filepath.Join(s.Dir, completedDir, entry.ContainerID)); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("completed record after Save: %v, want it dropped", err)
				}
				return again
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(t.TempDir())
			entry := intent(cid)
			if err := s.Save(entry); err != nil {
				t.Fatal(err)
			}
			done := completed(entry)
			if err := s.Update(done); err != nil {
				t.Fatal(err)
			}
			want := tt.change(t, s, entry, done)
			got, err := s.Load(cid)
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Errorf("Load = %+v, %v; want %+v", got, err, want)
			}
			// The entry on disk is what Save wrote; Update never touches it.
			if raw, err := s.Read(cid); err != nil || bytes.Contains(raw, []byte(`"result"`)) {
				t.Errorf("entry = %s, %v; want the intent", raw, err)
			}
			if ids, err := s.List(); err != nil || !slices.Equal(ids, []string{cid}) {
				t.Errorf("List = %q, %v; want only %s", ids, err, cid)
			}
			if err := s.Remove(cid); err != nil {
				t.Fatal(err)
			}
			if names := testutil.DirNames(t, filepath.Join(s.Dir, completedDir)); len(names) != 0 {
				t.Errorf("completed records after Remove: %q", names)
			}
		})
	}
}

// TestPrune: Orphans names the completed records whose entry is gone, and
// Prune deletes them and keeps the others.
func TestPrune(t *testing.T) {
	s := New(t.TempDir())
	if pruned, err := s.Prune(); err != nil || len(pruned) != 0 {
		t.Errorf("Prune without records = %q, %v; want none", pruned, err)
	}
	for _, id := range []string{"kept", "orphan"} {
		if err := s.Save(intent(id)); err != nil {
			t.Fatal(err)
		}
		if err := s.Update(completed(intent(id))); err != nil {
			t.Fatal(err)
		}
	}
	// What a crash during DEL may leave: the entry's removal made durable,
	// the record's not.
	if err := os.Remove(filepath.Join(s.Dir, "orphan")); err != nil {
		t.Fatal(err)
	}
	touch(t, filepath.Join(s.Dir, completedDir, ".kept.tmp42")) // being written
	orphans, err := s.Orphans()
	if err != nil || !slices.Equal(orphans, []string{"orphan"}) {
		t.Errorf("Orphans = %q, %v; want [orphan]", orphans, err)
	}
	if names := testutil.DirNames(t, filepath.Join(s.Dir, completedDir)); len(names) != 3 {
		t.Errorf("Orphans deleted something: %q left", names)
	}
	pruned, err := s.Prune()
	if err != nil || !slices.Equal(pruned, []string{"orphan"}) {
		t.Errorf("Prune = %q, %v; want [orphan]", pruned, err)
	}
	want := []string{".kept.tmp42", "kept"}
	if names := testutil.DirNames(t, filepath.Join(s.Dir, completedDir)); !slices.Equal(names, want) {
		t.Errorf("completed records = %q, want %q", names, want)
	}
}

func writeCompleted(t *testing.T, s *Store, id string, data []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(s.Dir, completedDir, id), data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func marshal(t *testing.T, p *plan.Plan) []byte {
	t.Helper()
	data, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return data
}
