package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/vishvananda/netlink"

	"github.com/braid-cni/braid/e2e/framework"
)

// checkReleased fails if host-local still leases an address on the cluster
// network or an example network, or braid's journal still holds a
// container: the pods' DEL did not release everything.
func (d *demo) checkReleased() error {
	var errs []error
	for _, dir := range []string{workPath("leases", "cluster"), "/var/lib/cni/networks/blue", "/var/lib/cni/networks/green"} {
		leases, err := leased(dir)
		if err != nil {
			errs = append(errs, err)
		} else if len(leases) > 0 {
			errs = append(errs, fmt.Errorf("host-local still leases %v in %s", leases, dir))
		}
	}
	entries, err := os.ReadDir("/var/lib/cni/braid")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, fmt.Errorf("read braid's journal: %w", err))
	}
	for _, e := range entries {
		if !e.IsDir() {
			errs = append(errs, fmt.Errorf("braid's journal still holds container %s", e.Name()))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	d.step("released: no host-local lease left on the cluster network, blue or green; braid's journal is empty")
	return nil
}

// leased lists host-local's leases in dir: every file but its lock and its
// hint of the last address handed out.
func leased(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read leases: %w", err)
	}
	var out []string
	for _, e := range entries {
		if e.Name() != "lock" && !strings.HasPrefix(e.Name(), "last_reserved_ip") {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// releaseHost deletes the demo's links, puts ip_forward and the root
// mount's propagation back, and removes the host directories braid and the
// example networks created and the demo's own.
func (d *demo) releaseHost() error {
	var errs []error
	var deleted []string
	for _, name := range demoLinks() {
		link, err := netlink.LinkByName(name)
		if errors.As(err, &netlink.LinkNotFoundError{}) {
			continue // never created: the run stopped before its plugin ran
		}
		if err == nil {
			err = netlink.LinkDel(link)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("delete link %s: %w", name, err))
			continue
		}
		if name == macvlanMaster {
			name += " (veth, with its peer " + macvlanPeer + ")"
		}
		deleted = append(deleted, name)
	}
	if len(deleted) > 0 {
		d.step("deleted links %s", strings.Join(deleted, ", "))
	}
	if d.st.IPForward != "" {
		if err := os.WriteFile(ipForward, []byte(d.st.IPForward), 0o644); err != nil {
			errs = append(errs, fmt.Errorf("restore %s=%s: %w", ipForward, d.st.IPForward, err))
		}
	}
	if d.st.RootShared {
		if err := framework.UnshareRoot(); err != nil {
			errs = append(errs, err)
		} else {
			d.step("made / a private mount again, as before")
		}
	}
	for _, dir := range append(d.st.NewDirs, stateDir) {
		if err := os.RemoveAll(dir); err != nil {
			errs = append(errs, fmt.Errorf("remove %s: %w", dir, err))
		}
	}
	d.step("removed %s; net.ipv4.ip_forward=%s as before", strings.Join(append(d.st.NewDirs, stateDir), ", "), d.st.IPForward)
	return errors.Join(errs...)
}
