package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/braid-cni/braid/e2e/framework"
)

const (
	// quietFor is how long the audit log (and braidd's request counter and
	// status queue) must stand still before a window opens or closes.
	quietFor = time.Second
	// settleTimeout bounds that wait.
	settleTimeout = 30 * time.Second
	// metricAPICalls and metricStatusPending are braidd's count of its own
	// API requests and its queue of network-status writes.
	metricAPICalls      = "braid_api_requests_total"
	metricStatusPending = "braid_status_pending"
)

// requestCounts are the numbers of secondary networks the requests
// benchmark measures.
func requestCounts() []int { return []int{0, 4, 8} }

// requestsResult is what braid asked the API server for in one mode and N,
// over all rounds.
type requestsResult struct {
	n        int
	mode     string
	rounds   int
	calls    map[string]int // by request (verb and resource), list and watch left out
	informer map[string]int // list and watch
	daemon   float64        // braidd's own count of its requests (all verbs)
}

func (r requestsResult) total() int {
	t := 0
	for _, c := range r.calls {
		t += c
	}
	return t
}

// runRequests counts the API requests of one pod's ADD and DEL in thin and
// thick mode for every N, one mode at a time, and prints them per pod.
func runRequests(ctx context.Context, e *env, rounds int, w io.Writer) error {
	if e.auditLog == "" {
		return errors.New("the control plane keeps no audit log")
	}
	start := time.Now()
	// The only braidd, braid's user as the thin plugin is: idle in the
	// thin windows, where its own count shows it stayed so.
	d, err := e.startDaemon(ctx, e.bin, "braidd-requests", e.braidSettings("requests"))
	if err != nil {
		return err
	}
	defer d.Stop()
	var results []requestsResult
	for _, n := range requestCounts() {
		for _, mode := range []string{modeThin, modeThick} {
			r, err := e.countRequests(ctx, mode, n, rounds, d)
			if err != nil {
				return fmt.Errorf("%s N=%d: %w", mode, n, err)
			}
			fmt.Fprintf(os.Stderr, "bench: requests N=%-2d %-6s %5.1f per pod ADD+DEL\n", n, mode, float64(r.total())/float64(rounds))
			results = append(results, r)
		}
	}
	printRequests(w, results)
	fmt.Fprintf(w, "took %s\n\n", time.Since(start).Round(time.Second))
	return nil
}

// countRequests runs rounds ADDs and DELs, each of its own pod with n
// secondary networks, in mode and reads braid's requests from the audit log, between
// a quiet moment before the first round and one after the last, once
// braidd (d, which thick mode forwards to) has written what it queued.
func (e *env) countRequests(ctx context.Context, mode string, n, rounds int, d *framework.Braidd) (requestsResult, error) {
	r := requestsResult{n: n, mode: mode, rounds: rounds, calls: map[string]int{}, informer: map[string]int{}}
	socketDir := ""
	if mode == modeThick {
		socketDir = d.SocketDir
	}
	// A pod per round, created before the window, as each pod's sandbox is
	// added once: braidd's event recorder would fold a pod's repeated
	// events into patches, and drop some past its per-object burst.
	attachers := make([]attacher, rounds)
	for i := range attachers {
		pod, err := e.createPod(ctx, fmt.Sprintf("r-%s-%d", id(n, mode), i), n)
		if err != nil {
			return r, err
		}
		if attachers[i], err = e.newBraid(mode, pod, socketDir); err != nil {
			return r, err
		}
	}
	before, err := e.settle(ctx, d)
	if err != nil {
		return r, err
	}
	for i, a := range attachers {
		if _, _, err := round(ctx, a, fmt.Sprintf("requests-%s-%d", id(n, mode), i)); err != nil {
			return r, err
		}
	}
	after, err := e.settle(ctx, d)
	if err != nil {
		return r, err
	}
	r.daemon = after.apiCalls - before.apiCalls
	events, err := readAudit(e.auditLog, before.auditSize, framework.BraidUser)
	if err != nil {
		return r, err
	}
	for _, ev := range events {
		if ev.informer() {
			r.informer[ev.request()]++
		} else {
			r.calls[ev.request()]++
		}
	}
	return r, nil
}

// quiet is what settle watches: the audit log's size and braidd's request
// count and queued statuses.
type quiet struct {
	auditSize         int64
	apiCalls, pending float64
}

// settle waits until the audit log has not grown for quietFor, braidd has
// no network-status queued and its count of API requests (status patches,
// events) has stood still as long, and returns that state.
func (e *env) settle(ctx context.Context, d *framework.Braidd) (quiet, error) {
	ctx, cancel := context.WithTimeout(ctx, settleTimeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last quiet
	since := time.Time{}
	for {
		now, err := e.quietState(ctx, d)
		if err != nil {
			return now, err
		}
		switch {
		case since.IsZero() || now != last || now.pending > 0:
			last, since = now, time.Now()
		case time.Since(since) >= quietFor:
			return now, nil
		}
		select {
		case <-ctx.Done():
			return now, fmt.Errorf("wait for the API requests to settle (audit log %d bytes, braidd %v requests, %v statuses queued): %w",
				now.auditSize, now.apiCalls, now.pending, ctx.Err())
		case <-tick.C:
		}
	}
}

func (e *env) quietState(ctx context.Context, d *framework.Braidd) (quiet, error) {
	var q quiet
	var err error
	if q.auditSize, err = auditSize(e.auditLog); err != nil {
		return q, err
	}
	m, err := scrape(ctx, d.OpsAddr, metricAPICalls, metricStatusPending)
	if err != nil {
		return q, err
	}
	q.apiCalls, q.pending = m[metricAPICalls], m[metricStatusPending]
	return q, nil
}

// printRequests writes, per mode and N, braid's requests per pod ADD+DEL
// and their breakdown, and the informers' list and watch apart.
func printRequests(w io.Writer, results []requestsResult) {
	if len(results) == 0 {
		return
	}
	fmt.Fprintf(w, "== requests: API requests braid makes per pod ADD+DEL (kube-apiserver audit log, user %s);\n"+
		"   %d pods' ADD then DEL per mode and N, one mode at a time, counted once braidd's queued writes are done\n",
		framework.BraidUser, results[0].rounds)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "mode\tN\tper pod\tbraidd's count\tbreakdown per pod")
	var informers []string
	for _, r := range results {
		per := func(c int) float64 { return float64(c) / float64(r.rounds) }
		var parts []string
		for _, req := range slices.Sorted(maps.Keys(r.calls)) {
			parts = append(parts, fmt.Sprintf("%s %.1f", req, per(r.calls[req])))
		}
		fmt.Fprintf(tw, "%s\t%d\t%.1f\t%.1f\t%s\n", r.mode, r.n, per(r.total()), r.daemon/float64(r.rounds), strings.Join(parts, ", "))
		for _, req := range slices.Sorted(maps.Keys(r.informer)) {
			informers = append(informers, fmt.Sprintf("%s N=%d: %s %d", r.mode, r.n, req, r.informer[req]))
		}
	}
	_ = tw.Flush()
	fmt.Fprintln(w, "(braidd's count: its own braid_api_requests_total over the same window per pod, list and watch included; in thin mode braidd runs idle, so 0)")
	if len(informers) == 0 {
		fmt.Fprintln(w, "informers (list, watch): none during the windows")
	}
	for _, l := range informers {
		fmt.Fprintln(w, "informers (list, watch), not counted above:", l)
	}
}
