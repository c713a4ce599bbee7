package main

import (
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"
)

// percentile is the nearest-rank p-th percentile (0 < p ≤ 100) of ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := int(float64(len(s))*p/100+0.999999) - 1
	return s[min(max(rank, 0), len(s)-1)]
}

// printBurst writes the burst's latencies, failure counts, braidd's memory
// and leftovers; the failures themselves are in the benchmark's error.
func printBurst(w io.Writer, r burstResult) {
	fmt.Fprintf(w, "== burst: %d pods (1 secondary bridge network each), ADD all then DEL all, %d calls in flight, thick\n",
		r.opts.pods, r.opts.inFlight)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "verb\tok\tfailed\tp50 ms\tp99 ms\tmax ms\tphase s\tcalls/s\t")
	for _, v := range []struct {
		verb  string
		took  []time.Duration
		phase time.Duration
	}{{"ADD", r.add, r.addWall}, {"DEL", r.del, r.delWall}} {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.1f\t%.1f\t%.1f\t%.2f\t%.1f\t\n", v.verb, len(v.took), r.opts.pods-len(v.took),
			ms(percentile(v.took, 50)), ms(percentile(v.took, 99)), ms(percentile(v.took, 100)),
			v.phase.Seconds(), float64(r.opts.pods)/v.phase.Seconds())
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "braidd RSS: %.1f MiB before the burst, peak %.1f MiB during it (VmHWM); live GETs: %.0f\n",
		mib(r.before.rss), mib(r.peak), r.fallbacks)
	fmt.Fprintf(w, "STATUS during the ADDs (every %s, through braidd's socket as braid-shim forwards it): %d answered, p50 %.1f ms, max %.1f ms, %d failed\n",
		statusEvery, len(r.status), ms(percentile(r.status, 50)), ms(percentile(r.status, 100)), len(r.statusErrs))
	for _, err := range r.statusErrs {
		fmt.Fprintln(w, "  ", err)
	}
	printLeftovers(w, r.leftovers)
	fmt.Fprintln(w)
}

// printLeftovers writes what a round's DELs left, or that they left
// nothing.
func printLeftovers(w io.Writer, leftovers []string) {
	if len(leftovers) == 0 {
		fmt.Fprintln(w, "left behind: nothing (journal, result caches, leases, bridge ports, network namespaces)")
	}
	for _, l := range leftovers {
		fmt.Fprintln(w, "left behind:", l)
	}
}

// printHotplug writes each step's latencies and error count, every error,
// and the leftovers.
func printHotplug(w io.Writer, r hotplugResult) {
	fmt.Fprintf(w, "== hot-plug: %d pods (1 secondary bridge network each, thick) get a second by a patch of their networks annotation, then lose it;\n"+
		"   each timed from its Patch's return until network-status (watched) says so; one pod at a time, then all %d patches at once\n",
		r.opts.pods, r.opts.pods)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "order\tchange\tok\terrors\tp50 ms\tp99 ms\tmax ms\tstep s\tbraidd Sync ms\t")
	var errs []error
	for _, s := range r.steps {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%.1f\t%.1f\t%.1f\t%.2f\t%.1f\t\n", s.order, s.verb(), len(s.took), len(s.errs),
			ms(percentile(s.took, 50)), ms(percentile(s.took, 99)), ms(percentile(s.took, 100)), s.wall.Seconds(), ms(s.synced))
		errs = append(errs, s.errs...)
	}
	_ = tw.Flush()
	fmt.Fprintln(w, "braidd Sync: the mean of its hot-plug Syncs during the step (its metrics), from its controller's call to the status queued;\n"+
		"the rest is the annotation's way to braidd, its hot-plug work queue, the status write and its way back")
	fmt.Fprintln(w, "checked after every step in each sandbox (netlink, in its network namespace): its interfaces and the hot-plugged one's addresses; its lease on the second network")
	errs = append(errs, r.errs...)
	fmt.Fprintf(w, "errors: %d (timeouts, failed patches, wrong state in a sandbox, failed ADDs and DELs)\n", len(errs))
	for _, err := range errs {
		fmt.Fprintln(w, "error:", err)
	}
	printLeftovers(w, r.leftovers)
	fmt.Fprintln(w)
}

// printScale writes braidd's memory with full caches against the target.
func printScale(w io.Writer, r scaleResult) {
	fmt.Fprintf(w, "== scale: braidd caching %.0f pods on its node and %.0f NADs\n", r.pods, r.nads)
	verdict := "met"
	if r.mem.rss > rssTarget {
		verdict = "NOT met"
	}
	fmt.Fprintf(w, "RSS %.1f MiB (target ≤ %d MiB: %s): %.1f MiB anonymous, %.1f MiB file-backed (the binary)\n",
		mib(r.mem.rss), rssTarget>>20, verdict, mib(r.mem.anon), mib(r.mem.file))
	fmt.Fprintf(w, "peak RSS %.1f MiB (VmHWM, the initial LIST), Go heap in use %.1f MiB\n",
		mib(r.mem.hwm), r.heapInuse/(1<<20))
	fmt.Fprintf(w, "created %d pods and %d NADs in %s; braidd full caches after %s; read %s later\n\n",
		r.opts.pods, r.opts.nads, r.create.Round(time.Millisecond), r.ready.Round(time.Millisecond), r.opts.settle)
}
