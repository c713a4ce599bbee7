package main

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// baselinePairs maps each mode with a baseline counterpart to it.
func baselinePairs() map[string]string {
	return map[string]string{modeThin: modeThinBase, modeThick: modeThickBase}
}

// paired compares one verb's durations of a mode and its baseline, round by
// round: the two ran next to each other in every round, so the round's
// difference is free of the machine's drift between rounds.
type paired struct {
	ratio  float64       // median over the baseline's median
	diff   time.Duration // the median of the rounds' differences
	slower int           // rounds in which the mode took longer
	rounds int
}

func pair(ds, base []time.Duration) paired {
	p := paired{rounds: min(len(ds), len(base))}
	if m := median(base); m > 0 {
		p.ratio = float64(median(ds)) / float64(m)
	}
	diffs := make([]time.Duration, p.rounds)
	for i := range diffs {
		diffs[i] = ds[i] - base[i]
		if diffs[i] > 0 {
			p.slower++
		}
	}
	p.diff = median(diffs)
	return p
}

// printAgainstBaseline writes, per N, thin against thin@base and thick
// against thick@base: ADD's and DEL's ratio of medians, the median of the
// rounds' differences and in how many rounds the new binaries were slower.
func printAgainstBaseline(w io.Writer, rev string, results []result) {
	base := map[string]result{}
	for _, r := range results {
		base[id(r.n, r.mode)] = r
	}
	fmt.Fprintf(w, "\n== against the baseline %s, round by round (the two ran next to each other in each round)\n", rev)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "N\tmode\tADD/base\tADD-base ms\tADD slower\tDEL/base\tDEL-base ms\tDEL slower\t")
	for _, r := range results {
		bm, ok := baselinePairs()[r.mode]
		if !ok {
			continue
		}
		b, ok := base[id(r.n, bm)]
		if !ok {
			continue
		}
		add, del := pair(r.add, b.add), pair(r.del, b.del)
		fmt.Fprintf(tw, "%d\t%s\t%.2f\t%+.1f\t%d/%d\t%.2f\t%+.1f\t%d/%d\t\n", r.n, r.mode,
			add.ratio, ms(add.diff), add.slower, add.rounds, del.ratio, ms(del.diff), del.slower, del.rounds)
	}
	_ = tw.Flush()
	fmt.Fprintln(w, "(slower: rounds in which the new binaries took longer; with no difference between them,"+
		" a fair coin's count: of 9 rounds, 0-1 or 8-9 come up about 4% of the time)")
}
