// Package journal is braid's crash-safe, one-file-per-container record of
// plans: ADD saves a container's plan before the first delegate runs
// (durably) and again with the results (Update: a crash may keep the first),
// so that DEL, CHECK, GC and braidctl doctor can
// load exactly what was attached even when the pod or its network
// attachments are gone. Save and Load are the one writing and reading of a
// plan; Write and Read move an entry's raw bytes (a planted or broken entry
// in tests, doctor's view of what is on disk).
package journal

import (
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

// Save journals p under its container ID, atomically (see Write).
func (s *Store) Save(p *plan.Plan) error {
	data, err := p.Marshal()
	if err != nil {
		return err
	}
	return s.Write(p.ContainerID, data)
}

// Update journals p as Save does, except that a crash of the node may keep
// the entry it replaces instead (each is whole): for the plan with its
// results, whose intent (the same attachments, without results) was saved
// before the first delegate ran. DEL of either deletes every attachment.
func (s *Store) Update(p *plan.Plan) error {
	data, err := p.Marshal()
	if err != nil {
		return err
	}
	path, err := s.path(p.ContainerID)
	if err != nil {
		return err
	}
	if err := atomicfile.Update(path, data, 0o600); err != nil {
		return fmt.Errorf("journal: write %q: %w", p.ContainerID, err)
	}
	return nil
}

// Load reads the journaled plan of a container. A missing entry's error
// satisfies errors.Is(err, fs.ErrNotExist); an entry that does not decode
// as a plan of this version is an error naming the container.
func (s *Store) Load(id string) (*plan.Plan, error) {
	data, err := s.Read(id)
	if err != nil {
		return nil, err
	}
	p, err := plan.Unmarshal(data)
	if err != nil {
		return nil, fmt.Errorf("journal: entry %q: %w", id, err)
	}
	return p, nil
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

// Remove deletes the entry for id and syncs the directory, so that a crash
// after a DEL cannot bring the entry back. A missing entry is not an error:
// DEL is retried by runtimes and must succeed when a previous DEL already
// ran.
func (s *Store) Remove(id string) error {
	path, err := s.path(id)
	if err != nil {
		return err
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
