package framework

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// procID tells a process from a later one that got the same PID: the start
// time in /proc/<pid>/stat counts clock ticks since boot, so the boot ID
// goes with it.
type procID struct {
	PID       int
	StartTime uint64
	BootID    string
}

// newProcID identifies a running process. If it is gone already, the ID
// is one that is never alive.
func newProcID(pid int) procID {
	id := procID{PID: pid}
	id.BootID, _ = bootID()
	_, id.StartTime, _ = procStat(pid)
	return id
}

// alive reports whether the process still runs: same boot, same start
// time, not a zombie. A detached child's new parent may never reap it.
func (id procID) alive() bool {
	if id.PID <= 0 || id.StartTime == 0 {
		return false
	}
	if boot, err := bootID(); err != nil || boot != id.BootID {
		return false
	}
	state, start, err := procStat(id.PID)
	return err == nil && start == id.StartTime && state != 'Z' && state != 'X'
}

func bootID() (string, error) {
	data, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return "", fmt.Errorf("read boot ID: %w", err)
	}
	return strings.TrimSpace(string(data)), nil
}

// procStat returns the state (field 3) and start time (field 22) of
// /proc/<pid>/stat. The command name before them is in parentheses and may
// hold spaces and parentheses itself, so the fields count from the last ')'.
func procStat(pid int) (byte, uint64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("parse /proc/%d/stat: no command name", pid)
	}
	fields := strings.Fields(string(data[i+1:]))
	if len(fields) < 20 {
		return 0, 0, fmt.Errorf("parse /proc/%d/stat: %d fields after the command name", pid, len(fields))
	}
	start, err := strconv.ParseUint(fields[19], 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("parse start time in /proc/%d/stat: %w", pid, err)
	}
	return fields[0][0], start, nil
}

// ProcessState identifies a child of a detached control plane or node, for
// a process that did not start it.
type ProcessState struct {
	Name    string `json:"name"`
	LogPath string `json:"logPath"`
	PID     int    `json:"pid"`
	// StartTime and BootID tell the child from a later process that got its
	// PID (see /proc/<pid>/stat).
	StartTime uint64 `json:"startTime"`
	BootID    string `json:"bootID"`
}

// state returns nil for a process that never started.
func (p *process) state() *ProcessState {
	if p == nil {
		return nil
	}
	return &ProcessState{Name: p.name, LogPath: p.logPath, PID: p.id.PID, StartTime: p.id.StartTime, BootID: p.id.BootID}
}

// attachProcess returns a process that stop signals by PID, for as long as
// it is the process s names; nil for nil.
func attachProcess(s *ProcessState) *process {
	if s == nil {
		return nil
	}
	return &process{name: s.Name, logPath: s.LogPath, id: procID{PID: s.PID, StartTime: s.StartTime, BootID: s.BootID}}
}

// Linux has numbered the pidfd calls alike on every architecture.
const (
	sysPidfdOpen  = 434
	sysPidfdGetfd = 438
	// lockFD is the host lock in a detached node's kubelet: its first extra
	// file (see kubeletProcOptions).
	lockFD = 3
)

// dupLock copies the lock file descriptor that the process pid holds as
// lockFD, open on path, into this process (pidfd_getfd(2), Linux 5.6): both
// then share one open file description, hence one flock, which stays held
// after that process exits, until the copy is closed.
func dupLock(pid int, path string) (*os.File, error) {
	fdPath := fmt.Sprintf("/proc/%d/fd/%d", pid, lockFD)
	if target, err := os.Readlink(fdPath); err != nil || target != path {
		return nil, fmt.Errorf("take host lock %s over from pid %d: %s is %q (%v)", path, pid, fdPath, target, err)
	}
	pidfd, _, errno := syscall.Syscall(sysPidfdOpen, uintptr(pid), 0, 0)
	if errno != 0 {
		return nil, fmt.Errorf("take host lock over from pid %d: pidfd_open: %w", pid, errno)
	}
	defer syscall.Close(int(pidfd))
	fd, _, errno := syscall.Syscall(sysPidfdGetfd, pidfd, lockFD, 0)
	if errno != 0 {
		return nil, fmt.Errorf("take host lock over from pid %d: pidfd_getfd: %w", pid, errno)
	}
	return os.NewFile(fd, path), nil
}
