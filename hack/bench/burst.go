package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/containernetworking/plugins/pkg/testutils"
	corev1 "k8s.io/api/core/v1"

	"github.com/braid-cni/braid/e2e/framework"
	"github.com/braid-cni/braid/wire"
)

const (
	// modeBurst names the burst's directory and its braid config; it runs
	// the thick path, as modeThick does.
	modeBurst = "burst"
	// burstIDPrefix starts every burst container ID, so leases can be told
	// apart from the latency benchmark's.
	burstIDPrefix = "bench-burst-"
	// createWorkers is how many API objects are created at once.
	createWorkers = 16
	// maxBurstPods leaves the /24s of the cluster network and the NAD an
	// address to spare.
	maxBurstPods = 250
)

// burstOptions configure the burst benchmark.
type burstOptions struct {
	pods     int // pods added, then deleted
	inFlight int // CNI calls at once
}

// sandbox is one pod's sandbox as the runtime holds it.
type sandbox struct {
	pod   *corev1.Pod
	cni   attacher // braid for this pod
	netns ns.NetNS
	id    string // container ID
}

// burstResult is what runBurst measured.
type burstResult struct {
	opts             burstOptions
	add, del         []time.Duration // the calls that succeeded
	addWall, delWall time.Duration   // each phase from first call to last return
	errs             []error         // failed calls: ADDs, then DELs
	before           memory          // braidd just before the burst
	peak             int64           // braidd's VmHWM during the burst
	fallbacks        float64         // braidd's live GETs, from its metrics
	leftovers        []string        // what the DELs should have removed
	// STATUS calls made to braidd during the ADDs, as containerd makes
	// them: the answered ones' latencies, and the failures.
	status     []time.Duration
	statusErrs []error
}

// statusEvery is how often the burst asks braidd for STATUS during the
// ADDs: far more often than containerd does (every 5 s per node).
const statusEvery = 100 * time.Millisecond

// runBurst creates the pods, starts a braidd that lists them, adds every pod
// and then deletes every pod with opts.inFlight calls at once, and checks
// that nothing is left. It fails when a call failed or something is left.
func runBurst(ctx context.Context, e *env, opts burstOptions, w io.Writer) error {
	pods, err := e.createPods(ctx, "burst", opts.pods)
	if err != nil {
		return err
	}
	d, err := e.startDaemon(ctx, e.bin, "braidd-"+modeBurst, e.braidSettings(modeBurst))
	if err != nil {
		return err
	}
	boxes, err := e.newSandboxes(modeBurst, burstIDPrefix, pods, d.SocketDir)
	if err != nil {
		return errors.Join(err, closeSandboxes(boxes))
	}
	r, err := burst(ctx, d, boxes, opts)
	if err != nil {
		return errors.Join(err, closeSandboxes(boxes))
	}
	// Checked before the namespaces go: closing one would take its
	// interfaces with it and hide a DEL that left them.
	r.leftovers, err = e.leftovers(modeBurst, burstIDPrefix, 1)
	if err := errors.Join(err, closeSandboxes(boxes)); err != nil {
		return err
	}
	printBurst(w, r)
	return r.err()
}

// burst runs the ADDs, then the DELs, and reads braidd's peak RSS between
// the start of the first and the end of the last.
func burst(ctx context.Context, d *framework.Braidd, boxes []sandbox, opts burstOptions) (burstResult, error) {
	r := burstResult{opts: opts}
	var err error
	if r.before, err = readMemory(d.Pid()); err != nil {
		return r, err
	}
	if err := resetPeakRSS(d.Pid()); err != nil {
		return r, err
	}
	var addErrs, delErrs []error
	shim, ok := boxes[0].cni.(*braid)
	if !ok {
		return r, fmt.Errorf("burst: sandbox %s is not run by braid", boxes[0].id)
	}
	statusCtx, stopStatus := context.WithCancel(ctx)
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		r.status, r.statusErrs = pollStatus(statusCtx, d.SocketDir, shim.list.Plugins[0].Bytes)
	}()
	r.add, r.addWall, addErrs = timeCalls(ctx, "ADD", boxes, opts.inFlight, addSandbox)
	stopStatus()
	<-polled
	// A failed ADD is deleted too, as a runtime does.
	r.del, r.delWall, delErrs = timeCalls(ctx, "DEL", boxes, opts.inFlight, delSandbox)
	r.errs = slices.Concat(addErrs, delErrs)
	after, err := readMemory(d.Pid())
	if err != nil {
		return r, err
	}
	r.peak = after.hwm
	m, err := scrape(ctx, d.OpsAddr, "braid_cache_fallbacks_total")
	if err != nil {
		return r, err
	}
	r.fallbacks = m["braid_cache_fallbacks_total"]
	return r, nil
}

// pollStatus forwards STATUS to the braidd on socketDir every statusEvery
// until ctx ends, as braid-shim does for containerd, and returns the
// latencies of the answered calls and the failures (an error answer or no
// answer within a second).
func pollStatus(ctx context.Context, socketDir string, config []byte) ([]time.Duration, []error) {
	var took []time.Duration
	var errs []error
	tick := time.NewTicker(statusEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return took, errs
		case <-tick.C:
		}
		call, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		start := time.Now()
		resp, err := wire.Forward(call, wire.SocketPath(socketDir), wire.NewRequest("STATUS", &skel.CmdArgs{StdinData: config}))
		cancel()
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("STATUS: %w", err))
		case resp.Error != nil:
			errs = append(errs, fmt.Errorf("STATUS: %w", resp.Error))
		default:
			took = append(took, time.Since(start))
		}
	}
}

// timeCalls runs call on every sandbox, inFlight at once, and returns the
// durations of those that succeeded, the time the phase took and the
// failures, each naming the verb and container.
func timeCalls(ctx context.Context, verb string, boxes []sandbox, inFlight int,
	call func(context.Context, sandbox) error) ([]time.Duration, time.Duration, []error) {
	took := make([]time.Duration, len(boxes)) // by index; 0: failed
	start := time.Now()
	errs := parallel(len(boxes), inFlight, func(i int) error {
		t := time.Now()
		if err := call(ctx, boxes[i]); err != nil {
			return fmt.Errorf("%s %s: %w", verb, boxes[i].id, err)
		}
		took[i] = time.Since(t)
		return nil
	})
	wall := time.Since(start)
	var ok []time.Duration
	for _, d := range took {
		if d > 0 {
			ok = append(ok, d)
		}
	}
	return ok, wall, errs
}

// createPods creates n pods on benchNode named prefix-000 on, each asking
// for the first secondary network, createWorkers at a time.
func (e *env) createPods(ctx context.Context, prefix string, n int) ([]*corev1.Pod, error) {
	pods := make([]*corev1.Pod, n)
	errs := parallel(n, createWorkers, func(i int) error {
		var err error
		pods[i], err = e.createPod(ctx, fmt.Sprintf("%s-%03d", prefix, i), 1)
		return err
	})
	return pods, firstErrors(errs, 3)
}

// newSandboxes makes a network namespace and braid's thick config of mode
// for each pod, container IDs starting with idPrefix. On error it returns
// the sandboxes made so far, for closeSandboxes.
func (e *env) newSandboxes(mode, idPrefix string, pods []*corev1.Pod, socketDir string) ([]sandbox, error) {
	boxes := make([]sandbox, 0, len(pods))
	for i, pod := range pods {
		b, err := e.newBraid(mode, pod, socketDir)
		if err != nil {
			return boxes, err
		}
		netns, err := testutils.NewNS()
		if err != nil {
			return boxes, fmt.Errorf("network namespace for pod %s: %w", pod.Name, err)
		}
		boxes = append(boxes, sandbox{pod: pod, cni: b, netns: netns, id: fmt.Sprintf("%s%03d", idPrefix, i)})
	}
	return boxes, nil
}

// addSandbox and delSandbox are the runtime's ADD and DEL of a sandbox.
func addSandbox(ctx context.Context, s sandbox) error { return s.cni.add(ctx, s.netns.Path(), s.id) }
func delSandbox(ctx context.Context, s sandbox) error { return s.cni.del(ctx, s.netns.Path(), s.id) }

// closeSandboxes removes the sandboxes' network namespaces and checks that
// they are gone.
func closeSandboxes(boxes []sandbox) error {
	var errs []error
	for _, s := range boxes {
		path := s.netns.Path()
		errs = append(errs, s.netns.Close(), testutils.UnmountNS(s.netns))
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("network namespace %s of %s still there", path, s.id))
		}
	}
	return errors.Join(errs...)
}

// err fails the round on a failed CNI call, a failed STATUS or a leftover.
func (r burstResult) err() error {
	return failures("CNI calls", slices.Concat(r.errs, r.statusErrs), r.leftovers)
}

// failures is a round's verdict: the first of errs (what they are), and
// the first of the leftovers; nil when there are neither.
func failures(what string, errs []error, leftovers []string) error {
	var out []error
	if err := firstErrors(errs, 5); err != nil {
		out = append(out, fmt.Errorf("%s: %w", what, err))
	}
	if len(leftovers) > 0 {
		out = append(out, fmt.Errorf("%d things left after the DELs, the first: %s", len(leftovers), leftovers[0]))
	}
	return errors.Join(out...)
}
