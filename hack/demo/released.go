package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/vishvananda/netlink"
)

// checkReleased runs after every other cleanup step but the removal of the
// temporary directory: no IP leased, no braid journal entry, no host link.
func (d *demo) checkReleased(context.Context) error {
	var errs []error
	// The example NADs keep host-local's default dataDir.
	for _, dir := range []string{filepath.Join(d.dir, "leases", "cluster"), "/var/lib/cni/networks/blue", "/var/lib/cni/networks/green"} {
		errs = append(errs, releaseLeaseDir(dir))
	}
	if entries, err := os.ReadDir(filepath.Join(d.dir, "braid")); err == nil {
		for _, e := range entries {
			if !e.IsDir() {
				errs = append(errs, fmt.Errorf("braid journal still holds %s", e.Name()))
			}
		}
	}
	for _, name := range append(bridges(), macvlanMaster, macvlanPeer) {
		if _, err := netlink.LinkByName(name); err == nil {
			errs = append(errs, fmt.Errorf("link %s still exists", name))
		}
	}
	return errors.Join(errs...)
}

// releaseLeaseDir fails if host-local still leases an IP in dir. Otherwise it
// removes dir: what is left is host-local's lock and its hint of the last IP
// handed out, which would only make the next run's addresses differ.
func releaseLeaseDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil // never attached, nothing leased
	}
	if err != nil {
		return fmt.Errorf("read lease directory: %w", err)
	}
	var leased []string
	for _, e := range entries {
		if e.Name() != "lock" && !strings.HasPrefix(e.Name(), "last_reserved_ip") {
			leased = append(leased, e.Name())
		}
	}
	if len(leased) > 0 {
		return fmt.Errorf("host-local still leases %v in %s", leased, dir)
	}
	return os.RemoveAll(dir)
}
