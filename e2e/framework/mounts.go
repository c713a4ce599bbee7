package framework

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"syscall"
)

// ShareRoot makes the root mount shared, as systemd does at boot, unless
// it is shared or a slave already, and reports whether it changed it.
// braidd's DaemonSet mounts /var/run/netns with HostToContainer
// propagation (rslave), so that the daemon sees the namespaces of pods
// created after it started, and containerd refuses that mount from a
// private source ("path /var/run/netns is mounted on / but it is not a
// shared or slave mount", ensureSharedOrSlave in its CRI plugin).
// containerd 1.6 looks the source up by its literal path: /var/run is a
// symbolic link to /run, which it does not follow, so the source mount is
// / even where /run/netns is a shared mount of its own. This VM's init is
// not systemd and leaves / private. Only the root mount changes (not
// recursively); UnshareRoot puts it back.
func ShareRoot() (bool, error) {
	shared, err := rootPropagates()
	if err != nil || shared {
		return false, err
	}
	if err := syscall.Mount("", "/", "", syscall.MS_SHARED, ""); err != nil {
		return false, fmt.Errorf("make / a shared mount: %w", err)
	}
	return true, nil
}

// UnshareRoot makes the root mount private again, once the containers that
// copied it are gone.
func UnshareRoot() error {
	if err := syscall.Mount("", "/", "", syscall.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make / a private mount again: %w", err)
	}
	return nil
}

// rootPropagates reports whether mounts propagate from the root mount to
// its copies: it is shared or a slave.
func rootPropagates() (bool, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false, fmt.Errorf("read mounts: %w", err)
	}
	defer f.Close()
	var propagates bool
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// id parent major:minor root mount-point options [optional...] - ...
		fields := strings.Fields(sc.Text())
		if len(fields) < 7 || fields[4] != "/" {
			continue
		}
		// The last mount on / hides those before it.
		propagates = false
		for _, opt := range fields[6:] {
			if opt == "-" {
				break
			}
			if strings.HasPrefix(opt, "shared:") || strings.HasPrefix(opt, "master:") {
				propagates = true
			}
		}
	}
	if err := sc.Err(); err != nil {
		return false, fmt.Errorf("read mounts: %w", err)
	}
	return propagates, nil
}
