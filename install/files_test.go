package install

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/braid-cni/braid/internal/testutil"
)

func TestCopyBinary(t *testing.T) {
	src := filepath.Join(t.TempDir(), "braid")
	content := []byte("#!/bin/sh\necho braid\n")
	if err := os.WriteFile(src, content, 0o600); err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	// An older binary is replaced, not appended to.
	if err := os.WriteFile(filepath.Join(dst, "braid"), []byte("old old old old old old old old"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := CopyBinary(src, dst); err != nil {
		t.Fatalf("CopyBinary: %v", err)
	}
	got, err := os.ReadFile(filepath.Join(dst, "braid"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, content) {
		t.Errorf("content = %q, want %q", got, content)
	}
	info, err := os.Stat(filepath.Join(dst, "braid"))
	if err != nil {
		t.Fatal(err)
	}
	if mode := info.Mode().Perm(); mode != 0o755 {
		t.Errorf("mode = %v, want 0755", mode)
	}
	if names := testutil.DirNames(t, dst); len(names) != 1 {
		t.Errorf("%s holds %q, want only braid", dst, names)
	}
}

func TestCopyBinaryErrors(t *testing.T) {
	tests := []struct {
		name     string
		src, dst func(t *testing.T) string
	}{
		{
			name: "missing source",
			src:  func(t *testing.T) string { return filepath.Join(t.TempDir(), "nope") },
			dst:  func(t *testing.T) string { return t.TempDir() },
		},
		{
			name: "missing destination directory",
			src: func(t *testing.T) string {
				p := filepath.Join(t.TempDir(), "braid")
				if err := os.WriteFile(p, []byte("x"), 0o755); err != nil {
					t.Fatal(err)
				}
				return p
			},
			dst: func(t *testing.T) string { return filepath.Join(t.TempDir(), "nope") },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := tt.src(t)
			if err := CopyBinary(src, tt.dst(t)); err == nil {
				t.Fatal("CopyBinary succeeded, want an error")
			}
		})
	}
}

func TestWriteIfChanged(t *testing.T) {
	path := filepath.Join(t.TempDir(), "braid.kubeconfig")
	steps := []struct {
		data        string
		wantChanged bool
	}{
		{"token-1", true},
		{"token-1", false},
		{"token-2", true},
	}
	for i, step := range steps {
		changed, err := WriteIfChanged(path, []byte(step.data), 0o600)
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if changed != step.wantChanged {
			t.Errorf("step %d (%s): changed = %v, want %v", i, step.data, changed, step.wantChanged)
		}
		if got, _ := os.ReadFile(path); string(got) != step.data {
			t.Errorf("step %d: content = %q, want %q", i, got, step.data)
		}
	}
}

func TestRemove(t *testing.T) {
	dir := t.TempDir()
	own, primary := "00-braid.conflist", "10-flannel.conflist"
	for _, name := range []string{own, primary} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("{}"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The second call finds nothing to remove, which is success.
	for i := range 2 {
		if err := Remove(dir, own); err != nil {
			t.Fatalf("Remove #%d: %v", i+1, err)
		}
	}
	if names := testutil.DirNames(t, dir); len(names) != 1 || names[0] != primary {
		t.Errorf("%s holds %q, want only %s", dir, names, primary)
	}
}
