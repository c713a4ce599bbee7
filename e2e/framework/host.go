package framework

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

// kubeletSysctls are the kernel settings the kubelet changes at start-up
// unless protectKernelDefaults is set (see setupKernelTunables in
// pkg/kubelet/cm), as paths under /proc/sys.
var kubeletSysctls = []string{
	"vm/overcommit_memory",
	"vm/panic_on_oom",
	"kernel/panic",
	"kernel/panic_on_oops",
	"kernel/keys/root_maxkeys",
	"kernel/keys/root_maxbytes",
}

// Host directories a node changes. The CNI directories are the real ones the
// runtime reads: their content is saved and restored. nodeDirs are written by
// the kubelet (/run/mount by mount(8) when it mounts a tmpfs) and the runtime
// (libcni's cache): removed at the end unless they existed before.
// cgroupName is the kubelet's top-level cgroup (cgroupfs driver) in every
// hierarchy.
const (
	cniConfDir = "/etc/cni/net.d"
	cniBinDir  = "/opt/cni/bin"
	cgroupName = "kubepods"
)

var nodeDirs = []string{
	"/var/lib/kubelet", "/var/log/pods", "/var/log/containers", "/run/containerd", "/run/mount", "/var/lib/cni/results",
}

// hostState is what a node changed on the host and how to undo it.
type hostState struct {
	sysctls map[string]string // /proc/sys path -> value before the node
	// created are paths that did not exist before the node; restore removes
	// them. saved maps the existing CNI directories to their backup copy.
	created []string
	saved   map[string]string
}

// state exports h for NodeState, which AttachNode and the crash record
// (see recordName) bring back with attachHost.
func (h *hostState) state() *HostState {
	if h == nil {
		return nil
	}
	return &HostState{Sysctls: maps.Clone(h.sysctls), Created: slices.Clone(h.created), Saved: maps.Clone(h.saved)}
}

// attachHost returns the hostState s exports; nil for nil.
func attachHost(s *HostState) *hostState {
	if s == nil {
		return nil
	}
	return &hostState{sysctls: maps.Clone(s.Sysctls), created: slices.Clone(s.Created), saved: maps.Clone(s.Saved)}
}

// saveHost records the sysctls, the CNI directories and which node
// directories and cgroups exist, then creates the CNI directories. On error
// too, the returned state restores what was recorded so far.
func saveHost(backupDir string) (*hostState, error) {
	h := &hostState{sysctls: map[string]string{}, saved: map[string]string{}}
	for _, key := range kubeletSysctls {
		data, err := os.ReadFile(filepath.Join("/proc/sys", key))
		if err != nil {
			return h, fmt.Errorf("read sysctl %s: %w", key, err)
		}
		h.sysctls[key] = strings.TrimSpace(string(data))
	}
	for _, dir := range slices.Concat(nodeDirs, cgroupDirs()) {
		if top := TopMissing(dir); top != "" {
			h.created = append(h.created, top)
		}
	}
	for i, dir := range []string{cniConfDir, cniBinDir} {
		if err := h.saveDir(dir, filepath.Join(backupDir, strconv.Itoa(i))); err != nil {
			return h, fmt.Errorf("save %s: %w", dir, err)
		}
	}
	return h, nil
}

// saveDir copies dir to backup, or remembers the topmost missing ancestor of
// dir so that restore removes everything created for it, and creates dir.
func (h *hostState) saveDir(dir, backup string) error {
	top := TopMissing(dir)
	if top == "" {
		if err := copyTree(dir, backup); err != nil {
			return err // not recorded: restore must not replace dir with a partial copy
		}
		h.saved[dir] = backup
		return nil
	}
	h.created = append(h.created, top)
	return os.MkdirAll(dir, 0o755)
}

// TopMissing returns the topmost ancestor of path (or path itself) that
// does not exist, or "" when path exists: what to remove again to undo a
// MkdirAll of path.
func TopMissing(path string) string {
	if _, err := os.Lstat(path); err == nil {
		return ""
	}
	top := path
	for parent := filepath.Dir(top); parent != top; parent = filepath.Dir(top) {
		if _, err := os.Lstat(parent); err == nil {
			break
		}
		top = parent
	}
	return top
}

// restore undoes what saveHost recorded; mounts under the removed
// directories must be gone already. It tries every step and joins the
// errors.
func (h *hostState) restore() error {
	var errs []error
	for key, value := range h.sysctls {
		path := filepath.Join("/proc/sys", key)
		if now, err := os.ReadFile(path); err == nil && strings.TrimSpace(string(now)) == value {
			continue
		}
		if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
			errs = append(errs, fmt.Errorf("restore sysctl %s=%s: %w", key, value, err))
		}
	}
	for dir, backup := range h.saved {
		if _, err := os.Stat(backup); err != nil {
			// Removing dir would lose what is left of it.
			errs = append(errs, fmt.Errorf("restore %s: backup gone, put it back by hand: %w", dir, err))
			continue
		}
		if err := os.RemoveAll(dir); err != nil {
			errs = append(errs, fmt.Errorf("restore %s: %w", dir, err))
			continue
		}
		if err := copyTree(backup, dir); err != nil {
			errs = append(errs, fmt.Errorf("restore %s: %w", dir, err))
		}
	}
	for _, path := range h.created {
		if strings.HasPrefix(path, "/sys/fs/cgroup/") {
			errs = append(errs, removeCgroup(path))
		} else if err := os.RemoveAll(path); err != nil {
			errs = append(errs, fmt.Errorf("remove %s: %w", path, err))
		}
	}
	return errors.Join(errs...)
}

// snapshotHost describes what a node may change on the host, one line per
// item: the entries of the CNI and node directories (or their absence), the
// kubelet's cgroups and sysctls. Stop compares it with the one StartNode
// took.
func snapshotHost() []string {
	var out []string
	for _, dir := range slices.Concat([]string{cniConfDir, cniBinDir}, nodeDirs, cgroupDirs()) {
		entries, err := os.ReadDir(dir)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			out = append(out, dir+": absent")
		case err != nil:
			out = append(out, fmt.Sprintf("%s: %v", dir, err))
		default:
			names := make([]string, len(entries))
			for i, e := range entries {
				names[i] = e.Name()
			}
			out = append(out, fmt.Sprintf("%s: %v", dir, names))
		}
	}
	for _, key := range kubeletSysctls {
		data, err := os.ReadFile(filepath.Join("/proc/sys", key))
		out = append(out, fmt.Sprintf("%s=%s (%v)", key, strings.TrimSpace(string(data)), err))
	}
	return out
}

// cgroupDirs returns the kubelet's top-level cgroup in every mounted cgroup
// hierarchy: the v1 ones and the hybrid setup's unified one, or the one of a
// cgroup v2 host.
func cgroupDirs() []string {
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		return []string{filepath.Join("/sys/fs/cgroup", cgroupName)}
	}
	entries, _ := os.ReadDir("/sys/fs/cgroup")
	var dirs []string
	for _, e := range entries {
		if e.IsDir() {
			dirs = append(dirs, filepath.Join("/sys/fs/cgroup", e.Name(), cgroupName))
		}
	}
	return dirs
}

// removeCgroup removes a cgroup and its children, deepest first: cgroupfs
// directories go with rmdir once they hold no tasks, never with RemoveAll.
func removeCgroup(dir string) error {
	var dirs []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			dirs = append(dirs, path)
		}
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove cgroup %s: %w", dir, err)
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := syscall.Rmdir(dirs[i]); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove cgroup %s: %w", dirs[i], err)
		}
	}
	return nil
}

// unmountUnder lazily unmounts every mount point at or below the given
// absolute directories, deepest first, so that they can be removed.
func unmountUnder(dirs ...string) error {
	targets, err := mountsUnder(dirs...)
	if err != nil {
		return err
	}
	return unmount(targets)
}

// mountsUnder returns the mount points at or below the given absolute
// directories, deepest first.
func mountsUnder(dirs ...string) ([]string, error) {
	for _, dir := range dirs {
		if !filepath.IsAbs(dir) || filepath.Clean(dir) == "/" {
			return nil, fmt.Errorf("unmount under %q: not an absolute directory below /", dir)
		}
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("read mounts: %w", err)
	}
	defer f.Close()
	var targets []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		target := unescapeMountPath(fields[4])
		for _, dir := range dirs {
			if target == dir || strings.HasPrefix(target, dir+"/") {
				targets = append(targets, target)
				break
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read mounts: %w", err)
	}
	sort.Slice(targets, func(i, j int) bool { return len(targets[i]) > len(targets[j]) })
	return targets, nil
}

// unmount lazily unmounts each target in turn; one that is no mount point
// (any more) is no error.
func unmount(targets []string) error {
	var errs []error
	for _, t := range targets {
		if err := syscall.Unmount(t, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", t, err))
		}
	}
	return errors.Join(errs...)
}

// unescapeMountPath undoes the octal escapes (\040 for a space) of
// /proc/self/mountinfo.
func unescapeMountPath(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// copyTree copies a directory tree with its modes; symbolic links are copied
// as links.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.MkdirAll(target, info.Mode().Perm())
		case info.Mode()&fs.ModeSymlink != 0:
			link, err := os.Readlink(path)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		default:
			return copyFile(path, target, info.Mode().Perm())
		}
	})
}

func copyFile(src, dst string, mode fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
