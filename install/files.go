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
	"io"
	"io/fs"
	"os"
	"path/filepath"
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
	if err := writeAtomic(dst, in, 0o755); err != nil {
		return fmt.Errorf("copy binary %s to %s: %w", src, dst, err)
	}
	return nil
}

// WriteFileAtomic writes data to path with mode: it writes and syncs a
// temporary file in the same directory, renames it over path and syncs the
// directory. Readers see the old content or the new, never a mix. The
// temporary file is removed on error.
func WriteFileAtomic(path string, data []byte, mode os.FileMode) error {
	if err := writeAtomic(path, bytes.NewReader(data), mode); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// WriteIfChanged writes data to path with WriteFileAtomic unless path
// already holds exactly data. It reports whether it wrote.
func WriteIfChanged(path string, data []byte, mode os.FileMode) (bool, error) {
	old, err := os.ReadFile(path)
	switch {
	case err == nil && bytes.Equal(old, data):
		return false, nil
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return false, fmt.Errorf("read %s: %w", path, err)
	}
	if err := WriteFileAtomic(path, data, mode); err != nil {
		return false, err
	}
	return true, nil
}

// Remove deletes braid's config confDir/own, so the runtime falls back to
// the node's primary config. A missing file is success: there is nothing
// left to undo.
func Remove(confDir, own string) error {
	path := filepath.Join(confDir, own)
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", path, err)
	}
	return nil
}

// writeAtomic copies r into a temporary file next to path and renames it
// over path. The temporary name starts with a dot and ends in ".tmp<random>",
// so neither libcni (which matches .conf, .conflist and .json) nor a shell
// glob for the plugin picks it up.
func writeAtomic(path string, r io.Reader, mode os.FileMode) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := io.Copy(tmp, r); err != nil {
		return fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Chmod(mode); err != nil {
		return fmt.Errorf("chmod %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	return syncDir(dir)
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}
