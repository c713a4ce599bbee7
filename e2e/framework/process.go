package framework

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// process is a child whose output is appended to a log file and which is
// killed when the test binary dies, unless it was started detached. A
// process attached by PID (attachProcess) has no cmd and no done channel.
type process struct {
	name    string
	logPath string
	cmd     *exec.Cmd
	done    chan struct{} // closed once the child has exited
	id      procID
}

// procOptions say how startProcess starts a child.
type procOptions struct {
	// detach starts the child in a session of its own and without a
	// parent-death signal, so that it outlives this process and no signal
	// sent to this process's terminal reaches it.
	detach bool
	// extra are open files the child inherits as fd 3, 4, ...
	extra []*os.File
}

func startProcess(name, logPath string, argv []string, opts procOptions) (*process, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.ExtraFiles = opts.extra
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if opts.detach {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	}
	p := &process{name: name, logPath: logPath, cmd: cmd, done: make(chan struct{})}
	started := make(chan error, 1)
	go p.run(logFile, started)
	if err := <-started; err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	return p, nil
}

// run starts the child and waits for it on one locked OS thread. Pdeathsig is
// delivered when the thread that forked the child exits, not the process, so
// that thread must outlive the child; an unlocked thread could be retired by
// the runtime (for example after a namespace switch went wrong) and take the
// child with it.
func (p *process) run(logFile *os.File, started chan<- error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer close(p.done)
	defer logFile.Close()
	if err := p.cmd.Start(); err != nil {
		started <- err
		return
	}
	p.id = newProcID(p.cmd.Process.Pid)
	started <- nil
	_ = p.cmd.Wait() // exiting is what stop asks for; an early exit shows in the log
}

func (p *process) exited() bool {
	if p.done == nil {
		return !p.id.alive()
	}
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM, then SIGKILL after grace, and waits for the exit.
func (p *process) stop(grace time.Duration) error {
	if p.exited() {
		return nil
	}
	p.signal(syscall.SIGTERM)
	if p.wait(grace) {
		return nil
	}
	p.signal(syscall.SIGKILL)
	if p.wait(10 * time.Second) {
		return nil
	}
	return fmt.Errorf("stop %s: pid %d did not exit after SIGKILL", p.name, p.id.PID)
}

// signal signals the child; an attached one only while it is still the
// process it was (see procID).
func (p *process) signal(sig syscall.Signal) {
	if p.cmd != nil {
		_ = p.cmd.Process.Signal(sig)
		return
	}
	if p.id.alive() {
		_ = syscall.Kill(p.id.PID, sig)
	}
}

// wait waits at most d for the child to exit and reports whether it did.
// An attached child is not this process's to reap: its exit shows as its
// PID gone, reused or a zombie.
func (p *process) wait(d time.Duration) bool {
	if p.done != nil {
		select {
		case <-p.done:
			return true
		case <-time.After(d):
			return false
		}
	}
	deadline := time.Now().Add(d)
	for p.id.alive() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return true
}

// tail returns the last n lines of the log, for error messages.
func (p *process) tail(n int) string {
	return tailFile(p.logPath, n)
}

func tailFile(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	defer f.Close()
	lines := make([]string, 0, n)
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		if len(lines) == n {
			lines = lines[1:]
		}
		lines = append(lines, sc.Text())
	}
	return strings.Join(lines, "\n")
}
