package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/containernetworking/plugins/pkg/testutils"
	corev1 "k8s.io/api/core/v1"
)

// secondaryCounts are the numbers of secondary networks measured, up to
// maxN.
func secondaryCounts(maxN int) []int {
	var out []int
	for _, n := range []int{0, 1, 4, 8, 16} {
		if n <= maxN {
			out = append(out, n)
		}
	}
	return out
}

// result is one N and mode's measured durations.
type result struct {
	n    int
	mode string
	add  []time.Duration
	del  []time.Duration
}

// id names an N and mode in pod names and container IDs, which allow
// neither "+" nor "@".
func id(n int, mode string) string {
	return fmt.Sprintf("%d-%s", n, strings.NewReplacer("+", "-", "@", "-").Replace(mode))
}

// runLatency measures every N in every mode, prints the table and writes
// the plot.
func runLatency(ctx context.Context, e *env, o options, w io.Writer) error {
	start := time.Now()
	results, err := measureAll(ctx, e, o)
	if err != nil {
		return err
	}
	fmt.Fprintln(w, "== latency: ADD and DEL of one pod against N secondary networks")
	if e.baseRev != "" {
		fmt.Fprintf(w, "(%s and %s: braid, braid-shim and braidd of %s)\n", modeThinBase, modeThickBase, e.baseRev)
	}
	printTable(w, results)
	if e.multusDir != "" {
		printAgainstMultus(w, results)
	}
	if e.baseRev != "" {
		printAgainstBaseline(w, e.baseRev, results)
	}
	if err := writePlot(o.out, e.modes(), results); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nplot: %s; %d rounds (+%d warm-up) per N and mode; took %s\n\n",
		o.out, o.rounds, o.warmup, time.Since(start).Round(time.Second))
	return nil
}

// measureAll creates a pod per N and mode, starts a daemon per thick mode
// and measures every N in every mode.
func measureAll(ctx context.Context, e *env, o options) ([]result, error) {
	pods := map[string]*corev1.Pod{}
	for _, n := range secondaryCounts(o.maxN) {
		for _, m := range e.modes() {
			pod, err := e.createPod(ctx, "p-"+id(n, m), n)
			if err != nil {
				return nil, err
			}
			pods[id(n, m)] = pod
		}
	}
	sockets := map[string]string{}
	for m, parallel := range e.thickModes() {
		conf := e.braidSettings(m)
		conf["parallelAttach"] = parallel
		d, err := e.startDaemon(ctx, e.binariesOf(m), "braidd-"+id(0, m), conf)
		if err != nil {
			return nil, err
		}
		sockets[m] = d.SocketDir
	}
	if e.multusThick {
		dir, err := e.startMultusDaemon(ctx)
		if err != nil {
			return nil, err
		}
		sockets[modeMultusThick] = dir
	}
	var results []result
	for _, n := range secondaryCounts(o.maxN) {
		rs, err := e.measureN(ctx, o, n, pods, sockets)
		if err != nil {
			return nil, fmt.Errorf("N=%d: %w", n, err)
		}
		results = append(results, rs...)
	}
	return results, nil
}

// measureN runs the warm-up and measured rounds of every mode for n
// secondary networks. Modes take turns round by round, so that whatever
// else slows the machine meanwhile falls on all of them alike, and each
// round starts one mode later than the one before: what a mode leaves
// running after its call (braidd's status and event writes, the API
// server's work on a thin plugin's writes, braidd's informers seeing them)
// falls on every mode in turn, not always on the one that follows it.
// Anything the DELs left behind (see leftovers) fails the N.
func (e *env) measureN(ctx context.Context, o options, n int, pods map[string]*corev1.Pod, sockets map[string]string) ([]result, error) {
	all := e.modes()
	results := make([]result, len(all))
	attachers := make([]attacher, len(all))
	for k, mode := range all {
		results[k] = result{n: n, mode: mode}
		var err error
		switch mode {
		case modeFloor:
			attachers[k], err = e.newFloor(pods[id(n, mode)], n)
		case modeNoop:
			attachers[k], err = e.newNoop(pods[id(n, mode)], n)
		case modeMultus:
			attachers[k], err = e.newMultus(pods[id(n, mode)])
		case modeMultusThick:
			attachers[k], err = e.newMultusThick(pods[id(n, mode)], sockets[mode])
		default:
			attachers[k], err = e.newBraid(mode, pods[id(n, mode)], sockets[mode])
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", mode, err)
		}
	}
	for i := 0; i < o.warmup+o.rounds; i++ {
		for j := range all {
			k := (i + j) % len(all)
			mode := all[k]
			add, del, err := round(ctx, attachers[k], fmt.Sprintf("bench-%s-%d", id(n, mode), i))
			if err != nil {
				return nil, fmt.Errorf("%s: %w", mode, err)
			}
			if i >= o.warmup {
				results[k].add, results[k].del = append(results[k].add, add), append(results[k].del, del)
			}
		}
	}
	for _, r := range results {
		fmt.Fprintf(os.Stderr, "bench: N=%-2d %-14s ADD %6.1f ms  DEL %6.1f ms\n", n, r.mode, ms(median(r.add)), ms(median(r.del)))
	}
	left, err := e.leftoversOfN(n)
	if err != nil {
		return nil, err
	}
	if len(left) > 0 {
		return nil, fmt.Errorf("%d things left after the DELs, the first: %s", len(left), left[0])
	}
	return results, nil
}

// leftoversOfN lists what the DELs of every mode's rounds for n secondary
// networks left behind (see leftovers), each once.
func (e *env) leftoversOfN(n int) ([]string, error) {
	var out []string
	for _, m := range e.modes() {
		left, err := e.leftovers(m, fmt.Sprintf("bench-%d-", n), n)
		if err != nil {
			return nil, err
		}
		out = append(out, left...)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// round is one ADD then DEL on a fresh network namespace. A failed ADD is
// still deleted, so that nothing leaks into the next round.
func round(ctx context.Context, a attacher, containerID string) (add, del time.Duration, err error) {
	netns, err := testutils.NewNS()
	if err != nil {
		return 0, 0, err
	}
	defer func() {
		_ = netns.Close()
		_ = testutils.UnmountNS(netns)
	}()
	start := time.Now()
	if err := a.add(ctx, netns.Path(), containerID); err != nil {
		_ = a.del(context.Background(), netns.Path(), containerID)
		return 0, 0, err
	}
	add = time.Since(start)
	start = time.Now()
	if err := a.del(ctx, netns.Path(), containerID); err != nil {
		return 0, 0, err
	}
	return add, time.Since(start), nil
}
