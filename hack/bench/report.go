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

// floors maps each N to the floor's median ADD.
func floors(results []result) map[int]time.Duration {
	out := map[int]time.Duration{}
	for _, r := range results {
		if r.mode == modeFloor {
			out[r.n] = median(r.add)
		}
	}
	return out
}

// printTable writes N, mode, the ADD and DEL medians, and ADD against the
// floor of the same N.
func printTable(w io.Writer, results []result) {
	fl := floors(results)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "N\tmode\tADD ms\tDEL ms\tADD/floor\tADD-floor ms\t")
	for _, r := range results {
		add, floor := median(r.add), fl[r.n]
		ratio := 0.0
		if floor > 0 {
			ratio = float64(add) / float64(floor)
		}
		fmt.Fprintf(tw, "%d\t%s\t%.1f\t%.1f\t%.2f\t%+.1f\t\n", r.n, r.mode, ms(add), ms(median(r.del)), ratio, ms(add-floor))
	}
	_ = tw.Flush()
}
