//go:build tools

// Package braid pins dependencies that packages under construction (the
// node daemon, issue 4) will import; remove an entry once code imports it.
package braid

import (
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/prometheus/client_golang/prometheus/promhttp"
)
