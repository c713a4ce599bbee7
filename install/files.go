// Package install is what braid's DaemonSet does on a node, as testable
// functions: copy the braid binary into the CNI bin directory, write a
// kubeconfig from the pod's service account, find the node's primary CNI
// config and write braid's own conflist, which wraps that config as
// clusterNetwork and sorts first so the runtime calls braid. Every file is
// replaced atomically, so a runtime never reads a half-written config or
// executes a half-written plugin.
package install

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/braid-cni/braid/atomicfile"
)

// CopyBinary copies the executable src to dstDir/<base of src> with mode
// 0755, through a temporary file in dstDir that is renamed into place.
func CopyBinary(src, dstDir string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("copy binary %s: %w", src, err)
	}
	defer in.Close()
	dst := filepath.Join(dstDir, filepath.Base(src))
	if err := atomicfile.Copy(dst, in, 0o755); err != nil {
		return fmt.Errorf("copy binary %s to %s: %w", src, dst, err)
	}
	return nil
}

// WriteIfChanged replaces path with data atomically (atomicfile.Write)
// unless path already holds exactly data. It reports whether it wrote.
func WriteIfChanged(path string, data []byte, mode os.FileMode) (bool, error) {
	old, err := os.ReadFile(path)
	switch {
	case err == nil && bytes.Equal(old, data):
		return false, nil
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return false, fmt.Errorf("read %s: %w", path, err)
	}
	if err := atomicfile.Write(path, data, mode); err != nil {
		return false, fmt.Errorf("write %s: %w", path, err)
	}
	return true, nil
}

// Remove deletes braid's config confDir/own, so the runtime falls back to
// the node's primary config. A missing file is success: there is nothing
// left to undo.
func Remove(confDir, own string) error {
	path := filepath.Join(confDir, own)
	if err := atomicfile.Remove(path); err != nil {
		return fmt.Errorf("remove %s: %w", path, err)
	}
	return nil
}
