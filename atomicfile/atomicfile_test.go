package atomicfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/braid-cni/braid/internal/testutil"
)

func TestWrite(t *testing.T) {
	tests := []struct {
		name string
		file string
		old  []byte // nil: no file before
		data []byte
		perm fs.FileMode
	}{
		{name: "new file", file: "00-braid.conflist", data: []byte("{}\n"), perm: 0o644},
		{name: "replace longer", file: "c1", old: []byte("a much longer old content\n"), data: []byte("new\n"), perm: 0o600},
		{name: "empty", file: "c1", old: []byte("x"), data: []byte{}, perm: 0o640},
		// The mode is set with chmod, so the umask does not narrow it.
		{name: "mode wider than the umask", file: "braid", data: []byte("#!/bin/sh\n"), perm: 0o777},
		{name: "mode narrower than the old file", file: "kubeconfig", old: []byte("old"), data: []byte("token"), perm: 0o600},
		{name: "longest name", file: strings.Repeat("a", 255), data: []byte("x"), perm: 0o600},
	}
	// Replace is Write without the syncs: what a reader on this node sees
	// is the same.
	writers := map[string]func(string, []byte, fs.FileMode) error{"Write": Write, "Replace": Replace}
	for _, tt := range tests {
		for wname, write := range writers {
			t.Run(wname+"/"+tt.name, func(t *testing.T) {
				dir := t.TempDir()
				path := filepath.Join(dir, tt.file)
				if tt.old != nil {
					if err := os.WriteFile(path, tt.old, 0o666); err != nil {
						t.Fatal(err)
					}
				}
				if err := write(path, tt.data, tt.perm); err != nil {
					t.Fatalf("%s: %v", wname, err)
				}
				got, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, tt.data) {
					t.Errorf("content = %q, want %q", got, tt.data)
				}
				info, err := os.Stat(path)
				if err != nil {
					t.Fatal(err)
				}
				if info.Mode().Perm() != tt.perm {
					t.Errorf("mode = %v, want %v", info.Mode().Perm(), tt.perm)
				}
				if names := testutil.DirNames(t, dir); !slices.Equal(names, []string{tt.file}) {
					t.Errorf("%s holds %q, want only %s", dir, names, tt.file)
				}
			})
		}
	}
}

// failingReader returns some bytes, then an error.
type failingReader struct{ sent bool }

var errRead = errors.New("read failed")

func (r *failingReader) Read(p []byte) (int, error) {
	if r.sent {
		return 0, errRead
	}
	r.sent = true
	return copy(p, "half of the new"), nil
}

func TestCopyFailureLeavesTargetAndNoTemp(t *testing.T) {
	tests := []struct {
		name string
		// setup returns the target path; the target's directory must
		// hold only what setup made when Copy has failed.
		setup func(t *testing.T, dir string) string
		r     io.Reader
		want  error // nil: any error
	}{
		{
			// Renaming a file over a non-empty directory fails after
			// the temp file was written and synced.
			name: "target is a directory",
			setup: func(t *testing.T, dir string) string {
				path := filepath.Join(dir, "target")
				if err := os.MkdirAll(filepath.Join(path, "child"), 0o755); err != nil {
					t.Fatal(err)
				}
				return path
			},
			r: strings.NewReader("x"),
		},
		{
			name: "reader fails",
			setup: func(t *testing.T, dir string) string {
				path := filepath.Join(dir, "target")
				if err := os.WriteFile(path, []byte("old"), 0o600); err != nil {
					t.Fatal(err)
				}
				return path
			},
			r:    &failingReader{},
			want: errRead,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := tt.setup(t, dir)
			before := testutil.DirNames(t, dir)
			oldData, _ := os.ReadFile(path)
			err := Copy(path, tt.r, 0o644)
			if err == nil {
				t.Fatal("Copy succeeded, want an error")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("error %v, want %v in its chain", err, tt.want)
			}
			if after := testutil.DirNames(t, dir); !slices.Equal(after, before) {
				t.Errorf("%s holds %q, want %q (no temp file)", dir, after, before)
			}
			if data, _ := os.ReadFile(path); !bytes.Equal(data, oldData) {
				t.Errorf("target holds %q, want the old %q", data, oldData)
			}
		})
	}
}

func TestWriteMissingDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope", "c1")
	err := Write(path, []byte("x"), 0o600)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("error %v, want fs.ErrNotExist", err)
	}
}

// TestConcurrentWriters has writers replace one file with contents of their
// own while readers read it: every read must be one whole content. A fixed
// temp name shared by the writers fails this, because one writer truncates
// and refills the temp file another is renaming.
func TestConcurrentWriters(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "results")
	const writers, rounds, size = 4, 50, 64 << 10
	contents := make(map[string]bool)
	payload := func(w int) []byte {
		return bytes.Repeat([]byte{byte('a' + w)}, size)
	}
	if err := Write(path, payload(0), 0o600); err != nil {
		t.Fatal(err)
	}
	for w := range writers {
		contents[string(payload(w))] = true
	}

	var wg sync.WaitGroup
	errs := make(chan error, writers*rounds+2*rounds)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range rounds {
				if err := Write(path, payload(w), 0o600); err != nil {
					errs <- err
				}
			}
		}()
	}
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range rounds {
				data, err := os.ReadFile(path)
				if err != nil {
					errs <- err
					continue
				}
				if !contents[string(data)] {
					errs <- fmt.Errorf("read a torn file: %d bytes, starting %q", len(data), data[:min(len(data), 8)])
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if names := testutil.DirNames(t, dir); !slices.Equal(names, []string{"results"}) {
		t.Errorf("%s holds %q, want only results", dir, names)
	}
}

func TestRemove(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(t *testing.T, dir string) string
		wantErr bool
	}{
		{
			name: "existing file",
			setup: func(t *testing.T, dir string) string {
				path := filepath.Join(dir, "c1")
				if err := os.WriteFile(path, []byte("x"), 0o600); err != nil {
					t.Fatal(err)
				}
				return path
			},
		},
		{
			name:  "missing file",
			setup: func(t *testing.T, dir string) string { return filepath.Join(dir, "c1") },
		},
		{
			name:  "missing directory",
			setup: func(t *testing.T, dir string) string { return filepath.Join(dir, "nope", "c1") },
		},
		{
			name: "non-empty directory",
			setup: func(t *testing.T, dir string) string {
				path := filepath.Join(dir, "results")
				if err := os.MkdirAll(filepath.Join(path, "entry"), 0o700); err != nil {
					t.Fatal(err)
				}
				return path
			},
			wantErr: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tt.setup(t, t.TempDir())
			err := Remove(path)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Remove: %v, want error %v", err, tt.wantErr)
			}
			_, statErr := os.Lstat(path)
			if gone := errors.Is(statErr, fs.ErrNotExist); gone == tt.wantErr {
				t.Errorf("after Remove: stat %v", statErr)
			}
		})
	}
}

// listingReader lists dir while Copy is reading from it, that is while the
// temp file exists and before it is renamed.
type listingReader struct {
	t     *testing.T
	dir   string
	names []string
	read  bool
}

func (r *listingReader) Read(p []byte) (int, error) {
	if r.read {
		r.names = testutil.DirNames(r.t, r.dir)
		return 0, io.EOF
	}
	r.read = true
	return copy(p, "{}"), nil
}

// TestTempName pins the temp file's name, which readers of the directory
// rely on (deployments/README.md promises it to operators): a dot, the
// target's name, ".tmp" and digits.
func TestTempName(t *testing.T) {
	tests := []struct {
		name       string
		file       string
		wantPrefix string
	}{
		{name: "config", file: "00-braid.conflist", wantPrefix: ".00-braid.conflist.tmp"},
		{name: "longest name is cut", file: strings.Repeat("a", 255), wantPrefix: "." + strings.Repeat("a", maxTempBase) + ".tmp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			r := &listingReader{t: t, dir: dir}
			if err := Copy(filepath.Join(dir, tt.file), r, 0o644); err != nil {
				t.Fatalf("Copy: %v", err)
			}
			if len(r.names) != 1 {
				t.Fatalf("while writing, %s held %q, want one temp file", dir, r.names)
			}
			digits, ok := strings.CutPrefix(r.names[0], tt.wantPrefix)
			if !ok || digits == "" || strings.Trim(digits, "0123456789") != "" {
				t.Errorf("temp name %q, want %q and digits", r.names[0], tt.wantPrefix)
			}
		})
	}
}
