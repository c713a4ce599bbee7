package framework

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// recordName is the file, next to the host lock, in which the node holding
// the lock keeps its NodeState: what it changed on the host and how to undo
// that. The kernel drops the lock when the node's process dies without Stop
// (killed, or a test timeout); the record stays, and the next StartNode
// undoes that node (recoverHost). It is not the lock file itself: the record
// is replaced by a rename, and a lock is on the file that was renamed over.
const recordName = "braid-e2e-node.json"

// recoverTimeout bounds each wait of recoverHost for killed processes to
// be gone.
const recoverTimeout = 10 * time.Second

func recordPath() string {
	return filepath.Join(os.TempDir(), recordName)
}

// writeRecord replaces the record with the node's state. The caller holds
// n.mu or is n's only user.
func (n *Node) writeRecord() error {
	return writeRecordFile(recordPath(), n.state())
}

// removeRecord removes the record once Stop put the host back, unless the
// record is another node's (one that recoverHost could not undo).
func (n *Node) removeRecord() error {
	path := recordPath()
	st, err := readRecord(path)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && st.WorkDir != n.workDir) {
		return nil
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("remove node record: %w", err)
	}
	return nil
}

// writeRecordFile writes st to path atomically, by a rename: a crash leaves
// the old record or the new one, never half of one.
func writeRecordFile(path string, st NodeState) error {
	data, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("write node record %s: %w", path, err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write node record %s: %w", path, err)
	}
	_, err = f.Write(data)
	if err = errors.Join(err, f.Sync(), f.Close()); err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("write node record %s: %w", path, err)
	}
	return nil
}

func readRecord(path string) (*NodeState, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var st NodeState
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("decode node record %s: %w", path, err)
	}
	if !filepath.IsAbs(st.WorkDir) || filepath.Clean(st.WorkDir) == "/" {
		return nil, fmt.Errorf("node record %s: working directory %q is not an absolute directory below /", path, st.WorkDir)
	}
	return &st, nil
}

// recoverHost undoes a node that ended without Stop, if the record names
// one: StartNode holds the host lock, so that node's process is gone. It
// kills what the node left running, removes its pods' network namespaces,
// unmounts, puts the host back as that node's Stop would, and checks the
// host against the snapshot that node took. On success it removes the
// record; on error it keeps it, so the next StartNode fails alike until
// someone cleaned up by hand.
func (n *Node) recoverHost(ctx context.Context) error {
	path := recordPath()
	st, err := readRecord(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("recover the host from a node that did not stop: %w; put the host back by hand, then remove %s", err, path)
	}
	done, err := undoNode(ctx, nodeFromState(*st, nil))
	if err != nil {
		return fmt.Errorf("recover the host from the node in %s, which did not stop (done: %s): %w; clean up the rest by hand, then remove %s",
			st.WorkDir, strings.Join(done, "; "), err, path)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("recover the host from a node that did not stop: remove its record: %w", err)
	}
	n.log.Info("recovered the host from a node that did not stop", "workDir", st.WorkDir, "done", strings.Join(done, "; "))
	return nil
}

// undoNode does what old's Stop would have done after stopping its pods,
// without an API server (old's is gone with it), and returns what it did.
func undoNode(ctx context.Context, old *Node) ([]string, error) {
	var done []string
	var errs []error
	step := func(what string, err error) {
		if what != "" {
			done = append(done, what)
		}
		errs = append(errs, err)
	}
	step(killNodeProcesses(ctx, old))
	step(killPodProcesses(ctx, old.host))
	step(removePodNetns(old.containerdDir))
	targets, err := mountsUnder(slices.Concat(nodeDirs, []string{old.workDir})...)
	errs = append(errs, err)
	if len(targets) > 0 {
		step(fmt.Sprintf("unmounted %d mounts", len(targets)), unmount(targets))
	}
	if old.host != nil {
		step(describeHost(old.host), old.host.restore())
	}
	if old.ownsWorkDir {
		step("removed "+old.workDir, os.RemoveAll(old.workDir))
	}
	if len(old.hostBefore) > 0 {
		errs = append(errs, old.checkHostRestored())
	}
	return done, errors.Join(errs...)
}

// killNodeProcesses kills the node's kubelet and containerd as recorded,
// and every kubelet, containerd, shim or runc whose command line names the
// node's working directory (a shim outlives containerd; a process may have
// started after the last record), then waits until they are gone.
func killNodeProcesses(ctx context.Context, old *Node) (string, error) {
	ids := map[int]procID{}
	var names []string
	for _, p := range []*process{old.kubelet, old.containerd} {
		if p != nil && p.id.alive() {
			ids[p.id.PID] = p.id
			names = append(names, fmt.Sprintf("%s %d", p.name, p.id.PID))
		}
	}
	for _, pid := range findProcesses(func(args []string) bool {
		return isNodeBinary(filepath.Base(args[0])) &&
			slices.ContainsFunc(args[1:], func(a string) bool { return strings.Contains(a, old.workDir+"/") })
	}) {
		if _, ok := ids[pid]; !ok {
			ids[pid] = newProcID(pid)
			names = append(names, fmt.Sprintf("%s %d", processName(pid), pid))
		}
	}
	if len(ids) == 0 {
		return "", nil
	}
	for pid, id := range ids {
		if id.alive() {
			_ = syscall.Kill(pid, syscall.SIGKILL) // gone meanwhile: the wait below sees it
		}
	}
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, recoverTimeout, true, func(context.Context) (bool, error) {
		return !slices.ContainsFunc(slices.Collect(maps.Values(ids)), procID.alive), nil
	})
	if err != nil {
		err = fmt.Errorf("kill %s: %w", strings.Join(names, ", "), err)
	}
	return "killed " + strings.Join(names, ", "), err
}

// isNodeBinary tells the programs a node runs with its working directory
// on their command line (runc as --root) by their base name.
func isNodeBinary(base string) bool {
	switch base {
	case "kubelet", "containerd", "runc":
		return true
	}
	return strings.HasPrefix(base, "containerd-shim")
}

// killPodProcesses kills the processes in the cgroups the node created,
// its pods' containers, which outlive their shims, and waits until those
// cgroups are empty and can be removed.
func killPodProcesses(ctx context.Context, h *hostState) (string, error) {
	if h == nil {
		return "", nil
	}
	var dirs []string
	for _, path := range h.created {
		if strings.HasPrefix(path, "/sys/fs/cgroup/") {
			dirs = append(dirs, path)
		}
	}
	killed := map[int]bool{}
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, recoverTimeout, true, func(context.Context) (bool, error) {
		pids := cgroupProcs(dirs)
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL) // gone meanwhile: the next round sees it
			killed[pid] = true
		}
		return len(pids) == 0, nil
	})
	if err != nil {
		return "", fmt.Errorf("kill the processes in %v: %w (still there: %v)", dirs, err, cgroupProcs(dirs))
	}
	if len(killed) == 0 {
		return "", nil
	}
	return fmt.Sprintf("killed %d processes of pods", len(killed)), nil
}

// cgroupProcs returns the processes in the cgroups at or below dirs.
func cgroupProcs(dirs []string) []int {
	var pids []int
	for _, dir := range dirs {
		_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				return nil // removed meanwhile, or never created
			}
			data, _ := os.ReadFile(filepath.Join(path, "cgroup.procs"))
			for _, f := range strings.Fields(string(data)) {
				var pid int
				if _, err := fmt.Sscan(f, &pid); err == nil {
					pids = append(pids, pid)
				}
			}
			return nil
		})
	}
	return pids
}

// removePodNetns unmounts and removes the network namespaces that the
// sandboxes of a node's containerd joined, as their OCI specs in its state
// directory name them (containerd 1.6 creates them as /var/run/netns/cni-*;
// containers join their sandbox's through /proc, which is left alone). The
// sandboxes' CNI DEL never runs: what a plugin keeps elsewhere stays.
func removePodNetns(containerdDir string) (string, error) {
	if containerdDir == "" {
		return "", nil
	}
	specs, _ := filepath.Glob(filepath.Join(containerdDir, "state", "io.containerd.runtime.v2.task", "*", "*", "config.json"))
	var removed []string
	var errs []error
	for _, spec := range specs {
		data, err := os.ReadFile(spec)
		if err != nil {
			errs = append(errs, fmt.Errorf("read %s: %w", spec, err))
			continue
		}
		path, err := specNetns(data)
		if err != nil {
			errs = append(errs, fmt.Errorf("decode %s: %w", spec, err))
			continue
		}
		if dir := filepath.Dir(path); dir != "/var/run/netns" && dir != "/run/netns" {
			continue
		}
		if err := syscall.Unmount(path, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("unmount network namespace %s: %w", path, err))
			continue
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove network namespace %s: %w", path, err))
			continue
		}
		removed = append(removed, path)
	}
	if len(removed) == 0 {
		return "", errors.Join(errs...)
	}
	return "removed network namespaces " + strings.Join(removed, ", "), errors.Join(errs...)
}

// describeHost says what restore puts back.
func describeHost(h *hostState) string {
	saved := slices.Sorted(maps.Keys(h.saved))
	return fmt.Sprintf("restored %d sysctls and %v, removed %v", len(h.sysctls), saved, h.created)
}

// processName is the command name of a process, "?" once it is gone.
func processName(pid int) string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(data))
}
