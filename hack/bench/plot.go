package main

import (
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// writePlot draws the median ADD latency against N, one line per mode.
func writePlot(path string, modes []string, results []result) error {
	p := plot.New()
	p.Title.Text = "braid: CNI ADD latency (median)"
	p.X.Label.Text = "secondary networks (N)"
	p.Y.Label.Text = "ADD (ms)"
	p.Y.Min = 0
	p.Legend.Top = true
	p.Legend.Left = true
	var lines []any
	for _, m := range modes {
		var pts plotter.XYs
		for _, r := range results {
			if r.mode == m {
				pts = append(pts, plotter.XY{X: float64(r.n), Y: ms(median(r.add))})
			}
		}
		lines = append(lines, m, pts)
	}
	if err := plotutil.AddLinePoints(p, lines...); err != nil {
		return err
	}
	p.Add(plotter.NewGrid())
	return p.Save(8*vg.Inch, 5*vg.Inch, path)
}
