package doctor

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/containernetworking/plugins/pkg/ns"
)

// verdict is what doctor can tell about a journaled network namespace.
type verdict int

const (
	// live: a network namespace is there, or there is no path to judge.
	live verdict = iota
	// gone: the namespace is clearly gone, as the runtime would see it:
	// the entry is stale.
	gone
	// unseen: doctor cannot judge the path from where it runs.
	unseen
)

// initialPIDNS is how /proc/<pid>/ns/pid reads in the node's first PID
// namespace: the kernel gives it this fixed inode (PROC_PID_INIT_INO).
const initialPIDNS = "pid:[4026531836]"

// judgeNetNS tells whether the netns at path is live, clearly gone or not
// to be judged. view is nil when this process sees mounts and processes as
// the runtime does (hostView), else why not. Only a path doctor can see
// the way the runtime does is ever called gone: a file that is missing
// from, or not a netns in, another mount namespace (a container, a
// sandboxed service) may be a live pod's.
func judgeNetNS(path string, view error) (verdict, error) {
	if path == "" {
		// DEL-only fallbacks record no netns; there is nothing to
		// judge, and the entry is kept as before.
		return live, nil
	}
	err := ns.IsNSorErr(path)
	if err == nil {
		return live, nil
	}
	var notNS ns.NSPathNotNSErr
	var notExist ns.NSPathNotExistErr
	if !errors.As(err, &notNS) && !errors.As(err, &notExist) {
		return unseen, fmt.Errorf("cannot see netns %s: %w", path, err)
	}
	if view != nil {
		return unseen, fmt.Errorf("cannot see netns %s from this mount namespace: %w", path, view)
	}
	// /proc/<pid>/ns/net (dockershim, cri-dockerd) is gone with its
	// process; in the node's PID namespace that is the runtime's view.
	// Elsewhere the directory must be there: one missing here is more
	// likely not mounted here than gone.
	if dir := filepath.Dir(path); !strings.HasPrefix(path, "/proc/") {
		if info, err := os.Stat(dir); err != nil || !info.IsDir() {
			return unseen, fmt.Errorf("cannot see netns %s from this mount namespace: no directory %s here", path, dir)
		}
	}
	return gone, nil
}

// hostView returns nil when this process, with procfs at procRoot
// (normally /proc), sees mounts and processes as the node's init does, and
// so as the runtime does: it runs in the node's first PID namespace (so
// procRoot/1 is the node's init and /proc/<pid> paths name the runtime's
// processes) and in init's mount namespace. Otherwise the error says what
// is different.
//
// The mount namespaces are compared by their mount lists: every mount
// belongs to one namespace, so two processes list the same mount IDs only
// when they share it (procRoot/1/ns/mnt, the direct way, is unreadable to
// a process with fewer capabilities than init's).
func hostView(procRoot string) error {
	pidNS, err := os.Readlink(filepath.Join(procRoot, "self", "ns", "pid"))
	if err != nil {
		return fmt.Errorf("cannot tell this process's PID namespace: %w", err)
	}
	if pidNS != initialPIDNS {
		return fmt.Errorf("not in the node's PID namespace (this process is in %s)", pidNS)
	}
	ownMounts, err := mountIDs(filepath.Join(procRoot, "self", "mountinfo"))
	if err != nil {
		return err
	}
	initMounts, err := mountIDs(filepath.Join(procRoot, "1", "mountinfo"))
	if err != nil {
		return err
	}
	if !slices.Equal(ownMounts, initMounts) {
		return errors.New("not in the mount namespace of the node's init")
	}
	return nil
}

// mountIDs lists the mount IDs (the first field) of a mountinfo file, in
// order.
func mountIDs(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read the mounts: %w", err)
	}
	var ids []string
	for line := range strings.Lines(string(data)) {
		if id, _, ok := strings.Cut(line, " "); ok {
			ids = append(ids, id)
		}
	}
	return ids, nil
}
