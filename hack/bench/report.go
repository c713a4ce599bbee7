package main

import (
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"
)

// median of ds (the mean of the middle two for an even count).
func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// medians maps each N to mode's median ADD and DEL.
func medians(results []result, mode string) (add, del map[int]time.Duration) {
	add, del = map[int]time.Duration{}, map[int]time.Duration{}
	for _, r := range results {
		if r.mode == mode {
			add[r.n], del[r.n] = median(r.add), median(r.del)
		}
	}
	return add, del
}

// printTable writes N, mode, the ADD and DEL medians, ADD against the floor
// of the same N and, for braid's modes, ADD and DEL over noop's: braid's own
// cost beyond one exec'd meta-plugin.
func printTable(w io.Writer, results []result) {
	fl, _ := medians(results, modeFloor)
	noopAdd, noopDel := medians(results, modeNoop)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "N\tmode\tADD ms\tDEL ms\tADD/floor\tADD-floor ms\tADD-noop ms\tDEL-noop ms\t")
	for _, r := range results {
		add, del, floor := median(r.add), median(r.del), fl[r.n]
		ratio := 0.0
		if floor > 0 {
			ratio = float64(add) / float64(floor)
		}
		overNoop := "\t\t"
		if _, ok := noopAdd[r.n]; ok && r.mode != modeFloor && r.mode != modeNoop {
			overNoop = fmt.Sprintf("%+.1f\t%+.1f\t", ms(add-noopAdd[r.n]), ms(del-noopDel[r.n]))
		}
		fmt.Fprintf(tw, "%d\t%s\t%.1f\t%.1f\t%.2f\t%+.1f\t%s\n", r.n, r.mode, ms(add), ms(del), ratio, ms(add-floor), overNoop)
	}
	_ = tw.Flush()
	fmt.Fprintln(w, "(noop: a do-nothing meta-plugin exec'd in braid's place that execs the same delegates; X-noop is braid's cost beyond that one exec)")
}
