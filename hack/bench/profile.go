package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/plugins/pkg/testutils"

	"github.com/braid-cni/braid/e2e/framework"
)

// profileCalls are the system calls the profile traces: process starts and
// ends, connections, the HTTP framing between braid-shim and braidd (plain
// text on the unix socket) and the journal's durable writes.
const profileCalls = "execve,exit_group,connect,accept4,read,write,fsync,fdatasync,rename,renameat,renameat2"

// profileLine picks from strace's -f -ttt -T lines the time, process, call and
// arguments; unfinished and resumed halves of one call are kept as they come.
var profileLine = regexp.MustCompile(`^(\d+)\s+(\d+\.\d+)\s+(.*)$`)

// runProfile runs one ADD per mode (thin, thick) and N under strace and
// prints each process's milestones relative to the moment libcni was asked:
// when braid or braid-shim started, connected, what it exec'd, when the
// journal was made durable and when the process ended; in thick mode
// braidd is traced too.
func runProfile(ctx context.Context, e *env, w io.Writer) error {
	strace, err := exec.LookPath("strace")
	if err != nil {
		return fmt.Errorf("the profile needs strace: %w", err)
	}
	conf := e.braidSettings(modeThick)
	d, err := e.startDaemon(ctx, e.bin, "braidd-profile", conf)
	if err != nil {
		return err
	}
	fmt.Fprintln(w, "== profile: one ADD under strace (times in ms from libcni's call; strace slows system calls, so totals run above the latency table's)")
	for _, n := range []int{0, 4} {
		for _, mode := range []string{modeThin, modeThick} {
			pod, err := e.createPod(ctx, "prof-"+id(n, mode), n)
			if err != nil {
				return err
			}
			socketDir := ""
			if mode == modeThick {
				socketDir = d.SocketDir
			}
			a, err := e.newBraid(mode, pod, socketDir)
			if err != nil {
				return err
			}
			b := a.(*braid)
			// A warm-up round: the page cache holds the binaries, braidd's
			// caches hold the pod.
			if _, _, err := round(ctx, b, "prof-warm-"+id(n, mode)); err != nil {
				return fmt.Errorf("%s N=%d warm-up: %w", mode, n, err)
			}
			fmt.Fprintf(w, "\n-- %s, N=%d\n", mode, n)
			if mode == modeThick {
				if err := daemonShare(ctx, w, d, b, n); err != nil {
					return fmt.Errorf("%s N=%d: %w", mode, n, err)
				}
			}
			traces, err := e.profileOne(ctx, b, strace, mode, n, d.Pid())
			if err != nil {
				return fmt.Errorf("%s N=%d: %w", mode, n, err)
			}
			for _, t := range traces {
				fmt.Fprint(w, t)
			}
		}
	}
	fmt.Fprintln(w)
	return nil
}

// profileOne runs one ADD with the plugin exec'd under strace (and braidd
// traced when pid is not 0), then its DEL untraced, and returns the
// timelines.
func (e *env) profileOne(ctx context.Context, b *braid, strace, mode string, n, daemonPid int) ([]string, error) {
	dir := filepath.Join(e.work, "profile", id(n, mode))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	plugin := "braid"
	if mode == modeThick {
		plugin = "braid-shim"
	}
	real := filepath.Join(e.bin.dir, plugin)
	pluginTrace := filepath.Join(dir, plugin+".strace")
	wrapper := fmt.Sprintf("#!/bin/sh\nexec %s -f -ttt -T -qq -s 40 -e trace=%s -o %s %s \"$@\"\n", strace, profileCalls, pluginTrace, real)
	if err := os.WriteFile(filepath.Join(dir, plugin), []byte(wrapper), 0o755); err != nil {
		return nil, err
	}
	traced := *b
	traced.cni = libcni.NewCNIConfigWithCacheDir([]string{dir, e.pluginsDir}, filepath.Join(e.work, mode, "runtime-cache"), nil)

	var daemon *exec.Cmd
	daemonTrace := filepath.Join(dir, "braidd.strace")
	if mode == modeThick {
		daemon = exec.CommandContext(ctx, strace, "-f", "-ttt", "-T", "-qq", "-s", "40", "-e", "trace="+profileCalls, "-o", daemonTrace, "-p", strconv.Itoa(daemonPid))
		if err := daemon.Start(); err != nil {
			return nil, fmt.Errorf("strace braidd: %w", err)
		}
		// strace attaches to every thread before the call is made.
		time.Sleep(500 * time.Millisecond)
	}
	netns, err := testutils.NewNS()
	if err != nil {
		return nil, err
	}
	defer func() {
		_ = netns.Close()
		_ = testutils.UnmountNS(netns)
	}()
	containerID := "prof-" + id(n, mode)
	start := time.Now()
	addErr := traced.add(ctx, netns.Path(), containerID)
	took := time.Since(start)
	if daemon != nil {
		// Let braidd's background status and event writes land in the trace.
		time.Sleep(300 * time.Millisecond)
		_ = daemon.Process.Signal(syscall.SIGINT)
		_ = daemon.Wait()
	}
	if err := b.del(ctx, netns.Path(), containerID); err != nil && addErr == nil {
		addErr = err
	}
	if addErr != nil {
		return nil, addErr
	}
	out := []string{fmt.Sprintf("ADD took %.1f ms under strace\n", ms(took))}
	for _, f := range []struct{ name, path string }{{plugin, pluginTrace}, {"braidd", daemonTrace}} {
		if f.name == "braidd" && daemon == nil {
			continue
		}
		t, err := timeline(f.name, f.path, start)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

// timeline renders one strace file as milestones relative to start: every
// exec and process end, connections, the HTTP request and answer lines,
// and the durable writes. The rest (Go's own reads and writes) is left out.
func timeline(name, path string, start time.Time) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("trace of %s: %w", name, err)
	}
	defer f.Close()
	t0 := float64(start.UnixMicro()) / 1e6
	var b strings.Builder
	fmt.Fprintf(&b, "  %s:\n", name)
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		m := profileLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		ts, err := strconv.ParseFloat(m[2], 64)
		if err != nil || ts < t0 {
			continue
		}
		call := m[3]
		if !milestone(call) {
			continue
		}
		if len(call) > 110 {
			call = call[:110] + "…"
		}
		fmt.Fprintf(&b, "    %8.2f  [%s] %s\n", (ts-t0)*1000, m[1], call)
	}
	return b.String(), sc.Err()
}

// milestone reports whether a traced call is worth a line.
func milestone(call string) bool {
	switch {
	case strings.HasPrefix(call, "read(") || strings.HasPrefix(call, "write("):
		return strings.Contains(call, `"HTTP/1.1`) || strings.Contains(call, `"POST `) || strings.Contains(call, `"GET `) ||
			strings.Contains(call, `BRAID01`) || strings.Contains(call, `{\"stdout`) || strings.Contains(call, `{\"error`)
	case strings.HasPrefix(call, "<... read") || strings.HasPrefix(call, "<... write"):
		return false
	case strings.HasPrefix(call, "connect(") || strings.HasPrefix(call, "accept4("):
		return !strings.Contains(call, "EAGAIN")
	}
	return !strings.HasPrefix(call, "+++") && !strings.HasPrefix(call, "---")
}

// profileRounds are the untraced rounds daemonShare averages.
const profileRounds = 7

// daemonShare runs profileRounds untraced ADDs and DELs and prints, from
// braidd's own metrics, how long its ADD requests took on average and how
// much of that its delegates took: the rest is braidd's own work (decoding,
// the plan, the journal, the merge, encoding).
func daemonShare(ctx context.Context, w io.Writer, d *framework.Braidd, b *braid, n int) error {
	before, err := addSums(ctx, d)
	if err != nil {
		return err
	}
	var total time.Duration
	for i := range profileRounds {
		add, _, err := round(ctx, b, fmt.Sprintf("prof-share-%d-%d", n, i))
		if err != nil {
			return err
		}
		total += add
	}
	after, err := addSums(ctx, d)
	if err != nil {
		return err
	}
	req := (after.request - before.request) / profileRounds * 1000
	del := (after.delegates - before.delegates) / profileRounds * 1000
	fmt.Fprintf(w, "untraced, mean of %d: ADD %.1f ms at libcni; in braidd %.1f ms, of which delegates %.1f ms and braidd's own work %.1f ms\n",
		profileRounds, ms(total/profileRounds), req, del, req-del)
	return nil
}

// sums are the seconds braidd's ADD requests and delegate ADDs took so far.
type sums struct{ request, delegates float64 }

// addSums reads braidd's metrics: the sums of braid_request_duration_seconds
// and braid_delegate_duration_seconds over every series with verb ADD.
func addSums(ctx context.Context, d *framework.Braidd) (sums, error) {
	code, body, err := d.Probe(ctx, "/metrics")
	if err != nil {
		return sums{}, err
	}
	if code != 200 {
		return sums{}, fmt.Errorf("braidd /metrics: status %d", code)
	}
	var s sums
	for _, line := range strings.Split(body, "\n") {
		name, rest, ok := strings.Cut(line, "{")
		if !ok || !strings.Contains(rest, `verb="ADD"`) {
			continue
		}
		f := strings.Fields(rest)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			continue
		}
		switch name {
		case "braid_request_duration_seconds_sum":
			s.request += v
		case "braid_delegate_duration_seconds_sum":
			s.delegates += v
		}
	}
	return s, nil
}
