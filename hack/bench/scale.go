package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/braid-cni/braid/e2e/framework"
)

// rssTarget is the most braidd should hold resident with the default
// -scale-pods and -scale-nads.
const rssTarget = 60 << 20

// scaleOptions configure the scale benchmark.
type scaleOptions struct {
	pods   int           // pods on braidd's node
	nads   int           // NADs in the cluster
	settle time.Duration // wait once the caches are full
}

// scaleResult is what runScale measured.
type scaleResult struct {
	opts      scaleOptions
	create    time.Duration // creating the objects
	ready     time.Duration // braidd's start to full caches
	pods      float64       // braid_cache_pods
	nads      float64       // braid_cache_nads
	mem       memory        // after settling
	heapInuse float64       // go_memstats_heap_inuse_bytes, after settling
}

// runScale creates the objects, starts braidd on scaleNode, waits until its
// caches hold them all, lets it settle and reads its memory.
func runScale(ctx context.Context, e *env, opts scaleOptions, w io.Writer) error {
	r := scaleResult{opts: opts}
	start := time.Now()
	if err := e.createScaleObjects(ctx, opts); err != nil {
		return err
	}
	r.create = time.Since(start)
	start = time.Now()
	conf := e.braidSettings("scale")
	conf["nodeName"], conf["enablePprof"] = scaleNode, true
	d, err := e.startDaemon(ctx, e.bin, "braidd-scale", conf)
	if err != nil {
		return err
	}
	if err := waitCached(ctx, d, opts); err != nil {
		return err
	}
	r.ready = time.Since(start)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(opts.settle):
	}
	if r.mem, err = readMemory(d.Pid()); err != nil {
		return err
	}
	m, err := scrape(ctx, d.OpsAddr, "go_memstats_heap_inuse_bytes", "braid_cache_pods", "braid_cache_nads")
	if err != nil {
		return err
	}
	r.heapInuse, r.pods, r.nads = m["go_memstats_heap_inuse_bytes"], m["braid_cache_pods"], m["braid_cache_nads"]
	printScale(w, r)
	return nil
}

// waitCached polls braidd's metrics until its caches hold every pod and NAD
// created, at most two minutes.
func waitCached(ctx context.Context, d *framework.Braidd, opts scaleOptions) error {
	var last map[string]float64
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		m, err := scrape(ctx, d.OpsAddr, "braid_cache_pods", "braid_cache_nads")
		if err != nil {
			return false, nil // not serving yet; the timeout reports it
		}
		last = m
		return m["braid_cache_pods"] == float64(opts.pods) && m["braid_cache_nads"] == float64(opts.nads), nil
	})
	if err != nil {
		return fmt.Errorf("wait for braidd's caches to hold %d pods and %d NADs (last seen %v): %w", opts.pods, opts.nads, last, err)
	}
	return nil
}
