// Package autoconf keeps braid in front of the node's primary CNI network:
// it writes braid's conflist, wrapping the alphabetically first config that
// is not braid's own, and rewrites or removes it as that config appears,
// changes and disappears, but not while it is only being rewritten. The
// daemon runs it (autoconfig: true).
package autoconf

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/braid-cni/braid/install"
	"github.com/braid-cni/braid/netconf"
)

// Writer writes braid's config for the primary network in Dir.
type Writer struct {
	Dir     string // the CNI config directory, e.g. /etc/cni/net.d
	Own     string // braid's file name in Dir, e.g. 00-braid.conflist
	Options install.Options
	// RemoveOnExit removes braid's file when Run ends, handing the node
	// back to its primary network.
	RemoveOnExit bool
	// Uninstalling, when set, limits RemoveOnExit to an uninstall: the
	// file is removed only when it answers true. On a restart or an update
	// the file stays, so the runtime's STATUS through it reports the node's
	// network not ready until braid is back, rather than the runtime
	// starting new pods on the primary network alone, without the networks
	// they ask for. An error keeps the file too, and is logged.
	Uninstalling func(context.Context) (bool, error)
	Log          *slog.Logger

	mu      sync.Mutex
	primary string // what braid's file wraps now; "" while there is none
}

// Primary is the primary config braid's file wraps now, "" while there is
// none: braidd's cluster network when its config names none.
func (w *Writer) Primary() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.primary
}

func (w *Writer) setPrimary(path string) {
	w.mu.Lock()
	w.primary = path
	w.mu.Unlock()
}

// settle is how long Run waits after a change for the next one: tools
// write a config in several steps.
const settle = 100 * time.Millisecond

// uninstallCheck bounds the Uninstalling question at exit.
const uninstallCheck = 5 * time.Second

// A failed sync (the primary braid wraps does not parse yet, a write
// failed) is tried again without waiting for a change: after retryFirst,
// then at doubling intervals up to retryMax, each failure logged with the
// file it is about. A config that stays broken is reported, not forgotten.
const (
	retryFirst = time.Second
	retryMax   = 30 * time.Second
)

// Sync writes braid's config for the current primary, or removes it when
// there is none (braid must not run without a cluster network). It reports
// whether the file changed. A half-written file is never left: writes are
// atomic. While the primary braid's file wraps is there but does not parse
// (its installer is rewriting it in place), Sync leaves braid's file as it
// is and returns the *install.BrokenPrimaryError: only a primary that is
// removed removes braid's file or hands over to the next config (see
// install.FindPrimary).
func (w *Writer) Sync() (bool, error) {
	own := filepath.Join(w.Dir, w.Own)
	primary, err := install.FindPrimary(w.Dir, w.Own)
	var none *install.NoPrimaryError
	if errors.As(err, &none) {
		w.setPrimary("")
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
	changed, err := install.WriteIfChanged(own, conf, 0o644)
	if err == nil {
		w.setPrimary(primary)
	}
	return changed, err
}

// Run syncs once, then again after every change in Dir and after a failed
// sync (see retryFirst), until ctx ends. It creates Dir (0755) when it does
// not exist yet, as on a new node before the primary network's installer
// ran, so that the watch is in place when the first primary arrives; when
// Dir is removed or moved away, Run creates and watches it again. Only a
// directory it can neither create nor watch ends Run with an error.
func (w *Writer) Run(ctx context.Context) error {
	watcher, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch %s: %w", w.Dir, err)
	}
	defer watcher.Close()
	if err := w.watch(watcher); err != nil {
		return err
	}
	settled, retry := stoppedTimer(), stoppedTimer()
	var wait time.Duration // until the next retry; 0 while syncs succeed
	sync := func() {
		wait = w.sync(wait)
		retry.Stop()
		if wait > 0 {
			retry.Reset(wait)
		}
	}
	sync()
	dir := filepath.Clean(w.Dir)
	for {
		select {
		case <-ctx.Done():
			return w.exit()
		case ev, ok := <-watcher.Events:
			if !ok {
				return w.exit()
			}
			switch {
			case ev.Name == dir && ev.Has(fsnotify.Remove|fsnotify.Rename):
				// The directory went, and its watch with it.
				if err := w.watch(watcher); err != nil {
					return err
				}
				sync()
			case w.relevant(ev.Name):
				settled.Reset(settle)
			}
		case err, ok := <-watcher.Errors:
			if ok {
				w.Log.Warn("watching the CNI config directory", "dir", w.Dir, "error", err)
			}
		case <-settled.C:
			sync()
		case <-retry.C:
			sync()
		}
	}
}

// watch creates Dir if it does not exist and adds it to watcher.
func (w *Writer) watch(watcher *fsnotify.Watcher) error {
	if _, err := os.Stat(w.Dir); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(w.Dir, 0o755); err != nil {
			return fmt.Errorf("create CNI config directory %s: %w", w.Dir, err)
		}
		w.Log.Info("created the CNI config directory", "dir", w.Dir)
	}
	if err := watcher.Add(w.Dir); err != nil {
		return fmt.Errorf("watch %s: %w", w.Dir, err)
	}
	return nil
}

func stoppedTimer() *time.Timer {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}

// relevant: configs and braid's own file (someone may delete it); not the
// temp files of atomic writes.
func (w *Writer) relevant(path string) bool {
	return netconf.IsConfigFile(path)
}

// sync runs Sync and logs what it did. prev is the retry delay in force,
// 0 after a sync that succeeded; sync returns the delay until the next
// try, 0 when this one succeeded.
func (w *Writer) sync(prev time.Duration) time.Duration {
	changed, err := w.Sync()
	if err == nil {
		if changed {
			w.Log.Info("braid config updated", "file", filepath.Join(w.Dir, w.Own))
		}
		return 0
	}
	next := retryFirst
	if prev > 0 {
		next = min(2*prev, retryMax)
	}
	var broken *install.BrokenPrimaryError
	if errors.As(err, &broken) {
		w.Log.Warn("primary CNI config unusable; braid config left as it is",
			"primary", broken.Path, "error", broken.Err, "retry", next)
		return next
	}
	w.Log.Error("braid config not written", "dir", w.Dir, "error", err, "retry", next)
	return next
}

func (w *Writer) exit() error {
	if !w.RemoveOnExit {
		return nil
	}
	if w.Uninstalling != nil {
		ctx, cancel := context.WithTimeout(context.Background(), uninstallCheck)
		defer cancel()
		uninstalling, err := w.Uninstalling(ctx)
		if err != nil || !uninstalling {
			w.Log.Info("keeping braid's config on exit: not an uninstall", "file", filepath.Join(w.Dir, w.Own), "error", err)
			return nil
		}
	}
	w.setPrimary("")
	if err := install.Remove(w.Dir, w.Own); err != nil {
		return fmt.Errorf("remove braid config from %s: %w", w.Dir, err)
	}
	return nil
}
