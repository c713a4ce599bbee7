package framework

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestProcStat(t *testing.T) {
	state, start, err := procStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if state != 'R' && state != 'S' {
		t.Errorf("state of this process: got %q, want R or S", state)
	}
	if start == 0 {
		t.Error("start time of this process: got 0")
	}
	if _, _, err := procStat(-1); err == nil {
		t.Error("procStat(-1): got no error")
	}
}

// TestDetachedProcess starts a detached child, records it, and stops it
// from an attached copy, as a second process would: the child must run in a
// session of its own, and an ID that no longer matches must never be
// signalled.
func TestDetachedProcess(t *testing.T) {
	p, err := startProcess("sleep", filepath.Join(t.TempDir(), "sleep.log"), []string{"sleep", "60"}, procOptions{detach: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.stop(time.Second) })
	if sid, err := session(p.id.PID); err != nil || sid != p.id.PID {
		t.Errorf("session of the detached child: got %d (%v), want its own, %d", sid, err, p.id.PID)
	}
	data, err := json.Marshal(p.state())
	if err != nil {
		t.Fatal(err)
	}
	var st ProcessState
	if err := json.Unmarshal(data, &st); err != nil {
		t.Fatal(err)
	}

	stale := st
	stale.StartTime++
	if other := attachProcess(&stale); !other.exited() || other.stop(time.Second) != nil || p.exited() {
		t.Fatal("a process ID with another start time must count as exited and never be signalled")
	}
	attached := attachProcess(&st)
	if attached.exited() {
		t.Fatal("attached process: exited before stop")
	}
	if err := attached.stop(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if !attached.exited() {
		t.Error("attached process: still alive after stop")
	}
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		t.Error("the child did not exit")
	}
}

// session returns field 6 of /proc/<pid>/stat.
func session(pid int) (int, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	fields := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
	var sid int
	_, err = fmt.Sscan(fields[3], &sid)
	return sid, err
}

// TestDupLock hands a flock to a child, as a detached node hands the host
// lock to its kubelet, and takes it over: the lock must stay held after the
// child exits, until the copy is closed.
func TestDupLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	p, err := startProcess("sleep", filepath.Join(t.TempDir(), "sleep.log"), []string{"sleep", "60"},
		procOptions{detach: true, extra: []*os.File{f}})
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.stop(time.Second) })
	dup, err := dupLock(p.id.PID, path)
	if errors.Is(err, syscall.ENOSYS) || errors.Is(err, syscall.EPERM) {
		t.Skipf("pidfd_getfd unavailable: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := p.stop(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if !locked(t, path) {
		t.Fatal("lock released with the child: the copy must hold it")
	}
	dup.Close()
	if locked(t, path) {
		t.Fatal("lock still held after the copy was closed")
	}
	if _, err := dupLock(os.Getpid(), path); err == nil {
		t.Error("dupLock from a process without the lock at fd 3: got no error")
	}
}

func locked(t *testing.T, path string) bool {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if err != nil && !errors.Is(err, syscall.EWOULDBLOCK) {
		t.Fatal(err)
	}
	return err != nil
}

// TestAttach starts a detached control plane and node, lets go of them as
// the process that started them does when it exits, and stops them from
// their recorded state as a second process would: the kubelet must hold the
// host lock meanwhile, and Stop must leave no process, no lock and no host
// change behind.
func TestAttach(t *testing.T) {
	RequireNodeTools(t)
	var log LogBuffer
	ctx := t.Context()
	cp, err := StartControlPlane(ctx, Options{WorkDir: t.TempDir(), Controllers: true, Detach: true, Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	stop := []func(){cp.Stop}
	t.Cleanup(func() {
		for i := len(stop) - 1; i >= 0; i-- {
			stop[i]()
		}
	})
	node, err := StartNode(ctx, cp, NodeOptions{WorkDir: t.TempDir(), ReadyWithoutNetwork: true, Detach: true, Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	stop = append(stop, node.Stop)
	cpState, nodeState := roundTrip(t, cp.State()), roundTrip(t, node.State())
	node.lock.Close() // as when this process exits
	node.lock = nil
	if !locked(t, HostLockPath()) {
		t.Fatal("host lock free once the starting process let go: the detached kubelet must hold it")
	}

	acp, err := AttachControlPlane(cpState, &log)
	if err != nil {
		t.Fatal(err)
	}
	anode, err := AttachNode(ctx, acp, nodeState, &log)
	if err != nil {
		t.Fatal(err)
	}
	stop = []func(){acp.Stop, anode.Stop}
	client, _, err := acp.Clients()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().Nodes().Get(ctx, NodeName, metav1.GetOptions{}); err != nil {
		t.Fatalf("get node through the attached control plane: %v", err)
	}
	anode.Stop()
	acp.Stop()
	for _, p := range []*process{node.kubelet, node.containerd, cp.scheduler, cp.controllerManager, cp.apiserver, cp.etcd} {
		// The attached Stop sees a child gone once it is a zombie; this
		// process, its parent, notices the exit when its reaper returns.
		if !p.wait(10 * time.Second) {
			t.Errorf("%s (pid %d) still runs after the attached Stop", p.name, p.id.PID)
		}
	}
	if locked(t, HostLockPath()) {
		t.Error("host lock still held after the attached node stopped")
	}
	if strings.Contains(log.String(), "level=WARN") {
		t.Errorf("log has warnings, a host not put back included:\n%s", log.String())
	}
}

func roundTrip[T any](t *testing.T, v T) T {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out T
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	return out
}
