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
// of the same N and, for braid's modes and Multus, ADD and DEL over noop's:
// the meta-plugin's own cost beyond one exec.
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
	fmt.Fprintln(w, "(noop: a do-nothing meta-plugin exec'd in braid's place that execs the same delegates; X-noop is a meta-plugin's cost beyond that one exec)")
}

// multusTarget is issue 15's target for thin: its ADD over the floor at
// most this fraction of Multus thin's, at every N.
const multusTarget = 0.6

// overMultus is one N's ADD over the floor in thin and multus modes.
type overMultus struct {
	n            int
	thin, multus time.Duration // the ADD median's excess over the floor's
	ratio        float64       // thin's over Multus's; 0 unless Multus's excess is positive
	add          paired        // thin's ADD against Multus's, round by round
}

// met tells whether thin is within multusTarget of Multus at this N.
func (o overMultus) met() bool { return o.ratio > 0 && o.ratio <= multusTarget }

// againstMultus compares thin with multus at every N both were measured.
func againstMultus(results []result) []overMultus {
	fl, _ := medians(results, modeFloor)
	byID := map[string]result{}
	for _, r := range results {
		byID[id(r.n, r.mode)] = r
	}
	var out []overMultus
	for _, r := range results {
		m, ok := byID[id(r.n, modeMultus)]
		if r.mode != modeThin || !ok {
			continue
		}
		o := overMultus{n: r.n, thin: median(r.add) - fl[r.n], multus: median(m.add) - fl[r.n], add: pair(r.add, m.add)}
		if o.multus > 0 {
			o.ratio = float64(o.thin) / float64(o.multus)
		}
		out = append(out, o)
	}
	return out
}

// printAgainstMultus writes, per N, thin's and Multus thin's ADD over the
// floor, thin's as a fraction of Multus's against the target, and in how
// many rounds thin's ADD took longer than Multus's in the same round.
func printAgainstMultus(w io.Writer, results []result) {
	fmt.Fprintf(w, "\n== thin against Multus thin: ADD over the floor (target: thin's at most %.1f× Multus's)\n", multusTarget)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "N\tthin-floor ms\tmultus-floor ms\tthin/multus\ttarget\tthin slower\t")
	for _, o := range againstMultus(results) {
		ratio, target := "-", "n/a"
		if o.ratio > 0 {
			ratio, target = fmt.Sprintf("%.2f", o.ratio), "not met"
			if o.met() {
				target = "met"
			}
		}
		fmt.Fprintf(tw, "%d\t%+.1f\t%+.1f\t%s\t%s\t%d/%d\t\n", o.n, ms(o.thin), ms(o.multus), ratio, target, o.add.slower, o.add.rounds)
	}
	_ = tw.Flush()
	fmt.Fprintln(w, "(thin slower: rounds in which thin's ADD took longer than Multus's; the two ran in the same rounds)")
}
