package ctl

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

// update rewrites the golden files: `go test ./ctl/ -run X -args -update`.
var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// golden compares got with testdata/path, or rewrites it under -update.
func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	path = filepath.Join("testdata", path)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -args -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (run with -args -update to accept):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}
