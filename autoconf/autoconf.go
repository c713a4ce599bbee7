// Package autoconf keeps braid in front of the node's primary CNI network:
// it writes braid's conflist, wrapping the alphabetically first config that
// is not braid's own, and rewrites or removes it as that config appears,
// changes and disappears. The daemon runs it (autoconfig: true).
package autoconf

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/braid-cni/braid/install"
)

// Writer writes braid's config for the primary network in Dir.
type Writer struct {
	Dir     string // the CNI config directory, e.g. /etc/cni/net.d
	Own     string // braid's file name in Dir, e.g. 00-braid.conflist
	Options install.Options
	// RemoveOnExit removes braid's file when Run ends, handing the node
	// back to its primary network.
	RemoveOnExit bool
	Log          *slog.Logger
}

// settle is how long Run waits after a change for the next one: tools
// write a config in several steps.
const settle = 100 * time.Millisecond

// Sync writes braid's config for the current primary, or removes it when
// there is none (braid must not run without a cluster network). It reports
// whether the file changed. A half-written file is never left: writes are
// atomic.
func (w *Writer) Sync() (bool, error) {
	own := filepath.Join(w.Dir, w.Own)
	primary, err := install.FindPrimary(w.Dir, w.Own)
	var none *install.NoPrimaryError
	if errors.As(err, &none) {
		_, statErr := os.Stat(own)
		if statErr != nil {
			return false, nil
		}
		return true, install.Remove(w.Dir, w.Own)
	}
	if err != nil {
		return false, err
	}
	data, err := os.ReadFile(primary)
	if err != nil {
		return false, fmt.Errorf("read primary config %s: %w", primary, err)
	}
	conf, err := install.Config(primary, data, w.Options)
	if err != nil {
		return false, err
	}
	return install.WriteIfChanged(own, conf, 0o644)
}

// Run syncs once, then again after every change in Dir, until ctx ends.
func (w *Writer) Run(ctx context.Context) error {
	watcher, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch %s: %w", w.Dir, err)
	}
	defer watcher.Close()
	if err := watcher.Add(w.Dir); err != nil {
		return fmt.Errorf("watch %s: %w", w.Dir, err)
	}
	w.sync()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return w.exit()
		case ev, ok := <-watcher.Events:
			if !ok {
				return w.exit()
			}
			if w.relevant(ev.Name) {
				timer.Reset(settle)
			}
		case err, ok := <-watcher.Errors:
			if ok {
				w.Log.Warn("watching the CNI config directory", "dir", w.Dir, "error", err)
			}
		case <-timer.C:
			w.sync()
		}
	}
}

// relevant: configs and braid's own file (someone may delete it); not the
// temp files of atomic writes.
func (w *Writer) relevant(path string) bool {
	base := filepath.Base(path)
	if strings.HasPrefix(base, ".") {
		return false
	}
	switch filepath.Ext(base) {
	case ".conf", ".conflist", ".json":
		return true
	}
	return false
}

func (w *Writer) sync() {
	changed, err := w.Sync()
	switch {
	case err != nil:
		w.Log.Error("braid config not written", "dir", w.Dir, "error", err)
	case changed:
		w.Log.Info("braid config updated", "file", filepath.Join(w.Dir, w.Own))
	}
}

func (w *Writer) exit() error {
	if !w.RemoveOnExit {
		return nil
	}
	if err := install.Remove(w.Dir, w.Own); err != nil {
		return fmt.Errorf("remove braid config from %s: %w", w.Dir, err)
	}
	return nil
}
