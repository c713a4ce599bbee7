// Package testutil holds helpers that tests of several packages share.
package testutil

import (
	"os"
	"testing"
)

// DirNames lists the names in dir, sorted, failing the test when dir cannot
// be read. A test compares it with what a directory must hold, for example
// that no temp file was left behind.
func DirNames(t testing.TB, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}
