//go:build tools

// Package braid pins dependencies that packages under construction (the
// benchmark's plot, issue 4) will import; remove an entry once code imports it.
package braid

import (
	_ "gonum.org/v1/plot"
	_ "gonum.org/v1/plot/plotter"
	_ "gonum.org/v1/plot/vg"
)
