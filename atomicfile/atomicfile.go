// Package atomicfile replaces and removes files so that a reader sees the
// old content or the new, never a mix, and a crash of the node loses neither
// the new content nor the removal once the call has returned (except
// Replace, which syncs nothing, for a file whose loss its reader can
// detect and do without). It is the one place in braid that writes files
// the runtime, libcni or braid itself read back: the journal, libcni's
// result cache and the installer's files.
package atomicfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// maxTempBase is how much of the target's name a temp name keeps, so that
// "." + base + ".tmp" + up to ten random digits fits in the 255 bytes a
// file name may have on common Linux file systems.
const maxTempBase = 255 - len(".") - len(".tmp") - 10

// Write replaces path with data and mode perm. See Copy.
func Write(path string, data []byte, perm fs.FileMode) error {
	return Copy(path, bytes.NewReader(data), perm)
}

// Replace replaces path with data and mode perm as Write does, but syncs
// neither the file nor the directory: a reader on this node (also after
// the writer was killed) sees the old content or the new, each whole, but
// after a crash of the node path may be missing, empty or hold part of
// the new content. It is for a record its reader can check against a
// durable one and do without, such as the journal's results; it saves the
// two syncs (on this project's test VM about 0.8 ms of each ADD).
func Replace(path string, data []byte, perm fs.FileMode) error {
	return replace(path, bytes.NewReader(data), perm, false)
}

// Copy replaces path with what r holds and mode perm: it copies r into a
// temp file in path's directory, sets its mode, syncs and closes it, renames
// it over path and syncs the directory. The temp file's name is a dot, the
// target's name and ".tmp" with random digits, so nothing that lists the
// directory for entries (the journal, libcni's config loader, a runtime
// looking for .conf, .conflist or .json files) takes it for one. On every
// failure the temp file is removed and path is untouched. The errors name
// the file or directory that failed; callers add what they were writing.
func Copy(path string, r io.Reader, perm fs.FileMode) error {
	return replace(path, r, perm, true)
}

// replace writes r to a temp file beside path and renames it over path,
// syncing the file before and the directory after when durable.
func replace(path string, r io.Reader, perm fs.FileMode, durable bool) error {
	dir, base := filepath.Dir(path), filepath.Base(path)
	if len(base) > maxTempBase {
		base = base[:maxTempBase]
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp*")
	if err != nil {
		return err
	}
	if err := fill(tmp, r, perm, durable); err != nil {
		return errors.Join(err, removeIfExists(tmp.Name()))
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		// The rename did not happen, so the temp file is ours alone to
		// delete and path is untouched.
		return errors.Join(err, removeIfExists(tmp.Name()))
	}
	if !durable {
		return nil
	}
	return syncDir(dir)
}

// fill copies r into f, sets its mode, flushes it to disk when durable
// and closes it. f is closed on every path.
func fill(f *os.File, r io.Reader, perm fs.FileMode, durable bool) error {
	_, err := io.Copy(f, r)
	if err == nil {
		err = f.Chmod(perm)
	}
	if err == nil && durable {
		err = f.Sync()
	}
	return errors.Join(err, f.Close())
}

// Remove deletes path and syncs its directory, so the removal survives a
// crash. A missing path is not an error (the directory is still synced, in
// case an earlier call unlinked it and did not get to sync); nor is a
// missing directory.
func Remove(path string) error {
	if err := removeIfExists(path); err != nil {
		return err
	}
	err := syncDir(filepath.Dir(path))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

func removeIfExists(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// syncDir flushes dir, so that a rename or an unlink inside it survives a
// crash.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	if err := errors.Join(d.Sync(), d.Close()); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}
