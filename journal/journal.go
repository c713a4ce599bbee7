// Package journal is braid's crash-safe, one-file-per-container record of
// plans, so that DEL, CHECK, GC and braidctl doctor can load exactly what
// was attached even when the pod or its network attachments are gone.
//
// ADD saves a container's plan durably before the first delegate runs (the
// entry, a file named by the container ID) and, once the delegates are
// done, the plan with their results (the completed record, a file of the
// same name in the hidden directory ".completed", which nothing syncs:
// Update). Load returns the completed record when it is whole and agrees
// with the entry, else the entry: a crash of the node may lose the
// results, never the attachments DEL must delete. Save, Update and Load are
// the one writing and reading of a plan; Write and Read move an entry's raw
// bytes (a planted or broken entry in tests, doctor's view of what is on
// disk).
package journal

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/braid-cni/braid/atomicfile"
	"github.com/braid-cni/braid/plan"
)

// maxIDLen is the longest file name common Linux file systems accept.
const maxIDLen = 255

// Store keeps one file per container ID in Dir.
type Store struct {
	Dir string
}

// New returns a Store that keeps its entries in dir. The directory is
// created by the first Write.
func New(dir string) *Store {
	return &Store{Dir: dir}
}

// Save journals p as its container's entry, durably and atomically (see
// Write), and first drops, durably, the container's completed record: p is
// the whole truth from now on (hot-plug saves plans that hold results).
func (s *Store) Save(p *plan.Plan) error {
	data, err := p.Marshal()
	if err != nil {
		return err
	}
	if err := s.dropCompleted(p.ContainerID); err != nil {
		return err
	}
	return s.Write(p.ContainerID, data)
}

// Update records p, a plan whose entry Save made durable before its
// delegates ran, now with their results, as the container's completed
// record: atomic for readers on this node, but synced neither as a file nor
// in the directory, which saves an ADD both syncs. After a crash of the
// node the record may be gone or broken; Load then returns the entry,
// whose attachments DEL deletes just the same.
func (s *Store) Update(p *plan.Plan) error {
	data, err := p.Marshal()
	if err != nil {
		return err
	}
	path, err := s.completedPath(p.ContainerID)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("journal: write completed %q: %w", p.ContainerID, err)
	}
	if err := atomicfile.Replace(path, data, 0o600); err != nil {
		return fmt.Errorf("journal: write completed %q: %w", p.ContainerID, err)
	}
	return nil
}

// Load reads the journaled plan of a container: its completed record when
// that is whole and agrees with the entry, else the entry. A missing
// entry's error satisfies errors.Is(err, fs.ErrNotExist); an entry that
// does not decode as a plan of this version is an error naming the
// container.
func (s *Store) Load(id string) (*plan.Plan, error) {
	data, err := s.Read(id)
	if err != nil {
		return nil, err
	}
	p, err := plan.Unmarshal(data)
	if err != nil {
		return nil, fmt.Errorf("journal: entry %q: %w", id, err)
	}
	if done := s.completed(p); done != nil {
		return done, nil
	}
	return p, nil
}

// completed returns the completed record of entry's container if it
// decodes and agrees with entry: the same container, and each of its
// attachments one of entry's (the same interface, network and config).
// It may lack some of entry's, which hot-plug deleted after saving entry.
// Anything else (no record, one cut short by a crash of the node) is nil.
func (s *Store) completed(entry *plan.Plan) *plan.Plan {
	path, err := s.completedPath(entry.ContainerID)
	if err != nil {
		return nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	p, err := plan.Unmarshal(data)
	if err != nil || p.ContainerID != entry.ContainerID {
		return nil
	}
	for _, att := range p.Attachments {
		if !slices.ContainsFunc(entry.Attachments, func(e plan.Attachment) bool {
			return e.IfName == att.IfName && e.Network == att.Network && bytes.Equal(e.Config, att.Config)
		}) {
			return nil
		}
	}
	return p
}

// Write stores data for id atomically: a crash at any point leaves either
// the previous entry or the new one, never a mix. The temp file it writes
// first has a name starting with a dot, which is never a valid id, so List
// and Read cannot mistake one left by a crash for an entry.
func (s *Store) Write(id string, data []byte) error {
	path, err := s.path(id)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return fmt.Errorf("journal: write %q: %w", id, err)
	}
	if err := atomicfile.Write(path, data, 0o600); err != nil {
		return fmt.Errorf("journal: write %q: %w", id, err)
	}
	return nil
}

// Read returns the data stored for id. When there is no entry the error
// satisfies errors.Is(err, fs.ErrNotExist).
func (s *Store) Read(id string) ([]byte, error) {
	path, err := s.path(id)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("journal: read %q: %w", id, err)
	}
	return data, nil
}

// Remove deletes the completed record and the entry for id and syncs the
// entry's directory, so that a crash after a DEL cannot bring the entry
// back. (A completed record a crash brings back agrees with no entry, so
// Load never returns it; Prune deletes it.) A missing entry is not an
// error: DEL is retried by runtimes and must succeed when a previous DEL
// already ran.
func (s *Store) Remove(id string) error {
	path, err := s.path(id)
	if err != nil {
		return err
	}
	completed, err := s.completedPath(id)
	if err != nil {
		return err
	}
	if err := removeIfExists(completed); err != nil {
		return fmt.Errorf("journal: remove %q: %w", id, err)
	}
	if err := atomicfile.Remove(path); err != nil {
		return fmt.Errorf("journal: remove %q: %w", id, err)
	}
	return nil
}

// List returns the ids of all entries, sorted. It skips temp files,
// directories (libcni keeps its cache in Dir/results) and any name that is
// not a valid id. A missing Dir holds no entries.
func (s *Store) List() ([]string, error) {
	if s.Dir == "" {
		return nil, errors.New("journal: list: no directory configured")
	}
	entries, err := os.ReadDir(s.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return []string{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("journal: list %s: %w", s.Dir, err)
	}
	ids := make([]string, 0, len(entries))
	for _, e := range entries {
		if !e.Type().IsRegular() || validateID(e.Name()) != nil {
			continue
		}
		ids = append(ids, e.Name())
	}
	slices.Sort(ids) // os.ReadDir sorts already; do not depend on it.
	return ids, nil
}

// path returns the file that holds id's entry.
func (s *Store) path(id string) (string, error) {
	if s.Dir == "" {
		return "", fmt.Errorf("journal: entry %q: no directory configured", id)
	}
	if err := validateID(id); err != nil {
		return "", err
	}
	return filepath.Join(s.Dir, id), nil
}

// completedDir is where completed records are kept, beside the entries: a
// hidden directory, which List skips.
const completedDir = ".completed"

// completedPath returns the file that holds id's completed record.
func (s *Store) completedPath(id string) (string, error) {
	if _, err := s.path(id); err != nil {
		return "", err
	}
	return filepath.Join(s.Dir, completedDir, id), nil
}

// dropCompleted removes id's completed record, durably: a crash must not
// bring back results the entry Save is about to write no longer has.
func (s *Store) dropCompleted(id string) error {
	path, err := s.completedPath(id)
	if err != nil {
		return err
	}
	if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
		return nil // the usual case: no sync needed
	}
	if err := atomicfile.Remove(path); err != nil {
		return fmt.Errorf("journal: drop completed %q: %w", id, err)
	}
	return nil
}

// Orphans returns the ids of completed records whose entry is gone (a
// crash of the node during DEL can leave one), sorted. Load never returns
// them; Prune deletes them.
func (s *Store) Orphans() ([]string, error) {
	dir := filepath.Join(s.Dir, completedDir)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("journal: list %s: %w", dir, err)
	}
	var ids []string
	for _, e := range entries {
		id := e.Name()
		if !e.Type().IsRegular() || validateID(id) != nil {
			continue // a temp file being written, or not ours
		}
		if _, err := os.Lstat(filepath.Join(s.Dir, id)); errors.Is(err, fs.ErrNotExist) {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// Prune deletes the completed records whose entry is gone (Orphans) and
// returns their ids.
func (s *Store) Prune() ([]string, error) {
	ids, err := s.Orphans()
	if err != nil {
		return nil, err
	}
	for i, id := range ids {
		if err := removeIfExists(filepath.Join(s.Dir, completedDir, id)); err != nil {
			return ids[:i], fmt.Errorf("journal: prune %q: %w", id, err)
		}
	}
	return ids, nil
}

func removeIfExists(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// validateID returns an error unless id can name a journal entry: a single,
// non-hidden path element of at most 255 bytes. Container IDs are usually
// 64 hex characters, but runtimes are free to choose others.
func validateID(id string) error {
	var reason string
	switch {
	case id == "":
		reason = "empty"
	case len(id) > maxIDLen:
		reason = fmt.Sprintf("longer than %d bytes", maxIDLen)
	case strings.HasPrefix(id, "."):
		reason = `starts with "."`
	case strings.ContainsAny(id, "/\x00"):
		reason = `contains "/" or NUL`
	default:
		return nil
	}
	return fmt.Errorf("journal: invalid id %q: %s", id, reason)
}
