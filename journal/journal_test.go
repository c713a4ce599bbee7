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
	p := &plan.Plan{Version: plan.Version, ContainerID: "c1", IfName: "eth0", Attachments: []plan.Attachment{{IfName: "eth0", Network: "cluster", Cluster: true, Config: json.RawMessage(`{"type":"ptp"}`)}}}
	if err := store.Save(p); err != nil {
		t.Fatal(err)
	}
	got, err := store.Load("c1")
	if err != nil || !reflect.DeepEqual(got, p) {
		t.Errorf("Load = %+v, %v; want %+v", got, err, p)
	}
	// Update replaces the entry: the plan with its results.
	p.Attachments[0].Result = json.RawMessage(`{"cniVersion":"1.0.0"}`)
	if err := store.Update(p); err != nil {
		t.Fatal(err)
	}
	got, err = store.Load("c1")
	if err != nil || !reflect.DeepEqual(got, p) {
		t.Errorf("Load after Update = %+v, %v; want %+v", got, err, p)
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
