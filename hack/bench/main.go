// Command bench measures what braid costs a node, in five benchmarks, each
// printing its own report:
//
//   - latency: for 0, 1, 4, 8 and 16 secondary networks (up to -max-n) it
//     times CNI ADD and DEL through libcni, as a runtime drives them, in
//     five modes: floor (the same delegates, the cluster network then each
//     NAD's config, invoked one by one directly with libcni, no braid), noop
//     (a do-nothing meta-plugin, hack/bench/noop, exec'd in braid's place,
//     that execs those delegates: the least any exec'd meta-plugin costs),
//     thin (the braid plugin talking to the API server itself), thick (the
//     braid shim forwarding to braidd) and thick+parallel (the same with
//     braidd's "parallelAttach"). A sixth, multus, is upstream Multus's
//     thin plugin in braid's place, measured when its binary is found:
//     the file $BRAID_BENCH_MULTUS names, else
//     ${XDG_CACHE_HOME:-~/.cache}/braid/multus-v4.3.0/multus, which `make
//     bench-multus` (hack/bench/multus.sh) builds from the Go module proxy;
//     a seventh, multus-thick, is multus-shim forwarding to multus-daemon,
//     when both are next to it (multus.sh builds them too; the daemon runs
//     in a mount namespace of its own, see multusDaemonScript). Multus
//     runs as braid's user (with the rights Multus adds), on the same NADs
//     and delegates, its status write and events on. It prints the
//     median ADD and DEL per N and mode, with ADD's ratio to and excess
//     over the floor and ADD and DEL over noop's, with Multus thin's ADD
//     over the floor against thin's, and plots ADD against N (-out). After
//     each N, anything the DELs left (cached results, journals, leases,
//     bridge ports) fails the run. With -baseline REV it also builds braid,
//     braid-shim and braidd of git revision REV and measures them in the
//     same rounds as thin@base and thick@base, and compares thin and thick
//     with them round by round.
//   - requests: for 0, 4 and 8 secondary networks, thin and then thick, one
//     at a time, it runs -requests-rounds ADDs and DELs of one pod and
//     counts the API requests braid made meanwhile (braidd's queued writes
//     included) in kube-apiserver's audit log, by verb and resource, per
//     pod ADD+DEL; the informers' list and watch are shown apart.
//   - burst: 200 pods, each with one secondary bridge network and its own
//     network namespace, are added and then deleted through the thick path
//     with 20 calls in flight, as a node does when a deployment scales. It
//     prints the p50 and p99 of ADD and DEL, the failed calls, and braidd's
//     peak RSS during the burst, and checks that the DELs left nothing
//     behind (journal, cached results, leases, bridge ports). Any failed
//     call or leftover fails the run.
//   - hotplug: 20 pods with one secondary bridge network each are added
//     through the thick path; then each pod's networks annotation is
//     patched to ask for a second network, and back, one pod at a time and
//     then all patches at once. Each change is timed from the Patch's
//     return until the pod's network-status (followed by an informer) says
//     so; it prints p50, p99 and max per step and the errors. After every
//     step each sandbox's network namespace is read (the interface and its
//     addresses there or gone) and its lease on the second network
//     counted; the runtime's DELs must leave nothing. Any error fails the
//     run.
//   - scale: braidd starts against an API server holding 1000 pods on its
//     node and 500 NADs, realistic objects its informers slim. Once ready
//     and settled it prints braidd's RSS, peak RSS and Go heap, against the
//     target of 60 MiB RSS.
//
// Latency, burst and hotplug share one control plane; requests gets a fresh
// one with an audit log, and scale one so that its caches hold exactly its
// objects. The benchmarks start their own etcd and kube-apiserver
// (e2e/framework), so they need root and the binaries of `make tools
// build`; `make bench` runs them all.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"
)

// The benchmarks; latency, burst and hotplug run first, then requests and
// scale.
const (
	benchLatency  = "latency"
	benchRequests = "requests"
	benchBurst    = "burst"
	benchHotplug  = "hotplug"
	benchScale    = "scale"
	benchProfile  = "profile" // only when asked for
)

// options are the command line's settings.
type options struct {
	run            []string // the benchmarks to run
	rounds         int
	warmup         int
	out            string
	baseline       string // a git revision, or empty
	maxN           int    // latency: the largest N measured
	requestsRounds int
	burst          burstOptions
	hotplug        hotplugOptions
	scale          scaleOptions
}

func (o options) wants(bench string) bool { return slices.Contains(o.run, bench) }

func main() {
	var o options
	run := flag.String("run", "latency,requests,burst,hotplug,scale", "the benchmarks to run, comma-separated; also profile (one ADD per mode under strace)")
	flag.IntVar(&o.rounds, "rounds", 9, "latency: measured ADD+DEL rounds per N and mode (at least 7)")
	flag.IntVar(&o.warmup, "warmup", 1, "latency: unmeasured rounds before them")
	flag.StringVar(&o.out, "out", "bench.png", "latency: where to write the plot")
	flag.IntVar(&o.maxN, "max-n", maxSecondaries, "latency: the largest number of secondary networks measured (to shorten a run)")
	flag.StringVar(&o.baseline, "baseline", "", "latency: also measure thin and thick with the binaries of this git revision (thin@base, thick@base)")
	flag.IntVar(&o.requestsRounds, "requests-rounds", 5, "requests: ADD+DEL rounds per N and mode, over which the requests are averaged")
	flag.IntVar(&o.burst.pods, "burst-pods", 200, "burst: pods added then deleted")
	flag.IntVar(&o.burst.inFlight, "burst-inflight", 20, "burst: CNI calls in flight")
	flag.IntVar(&o.hotplug.pods, "hotplug-pods", 20, "hotplug: pods whose networks change")
	flag.DurationVar(&o.hotplug.timeout, "hotplug-timeout", 30*time.Second, "hotplug: the longest a pod's network-status may take to follow its patch")
	flag.IntVar(&o.scale.pods, "scale-pods", 1000, "scale: pods on braidd's node")
	flag.IntVar(&o.scale.nads, "scale-nads", 500, "scale: NetworkAttachmentDefinitions")
	flag.DurationVar(&o.scale.settle, "scale-settle", 5*time.Second, "scale: wait after the caches hold everything, before reading memory")
	flag.Parse()
	o.run = strings.Split(*run, ",")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := runAll(ctx, o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		stop()
		os.Exit(1)
	}
}

// runAll runs the chosen benchmarks. A failed benchmark does not stop the
// next; the error joins every failure.
func runAll(ctx context.Context, o options, w io.Writer) error {
	if err := o.validate(); err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return errors.New("needs root (network namespaces, bridges)")
	}
	var errs []error
	if o.wants(benchLatency) || o.wants(benchBurst) || o.wants(benchHotplug) || o.wants(benchProfile) {
		eo := envOptions{maxN: maxSecondaries}
		if o.wants(benchLatency) {
			eo.baseline, eo.multus = o.baseline, true
		}
		errs = append(errs, withEnv(ctx, eo, func(e *env) error {
			var errs []error
			if o.wants(benchLatency) {
				errs = append(errs, wrapBench(benchLatency, runLatency(ctx, e, o, w)))
			}
			if o.wants(benchBurst) {
				errs = append(errs, wrapBench(benchBurst, runBurst(ctx, e, o.burst, w)))
			}
			if o.wants(benchHotplug) {
				errs = append(errs, wrapBench(benchHotplug, runHotplug(ctx, e, o.hotplug, w)))
			}
			if o.wants(benchProfile) {
				errs = append(errs, wrapBench(benchProfile, runProfile(ctx, e, w)))
			}
			return errors.Join(errs...)
		}))
	}
	if o.wants(benchRequests) {
		// A control plane of its own: its audit log, written before every
		// response, must not slow the other benchmarks' requests.
		eo := envOptions{maxN: slices.Max(requestCounts()), audit: true}
		errs = append(errs, withEnv(ctx, eo, func(e *env) error {
			return wrapBench(benchRequests, runRequests(ctx, e, o.requestsRounds, w))
		}))
	}
	if o.wants(benchScale) {
		// No secondary networks: the scale benchmark's NADs are its own.
		errs = append(errs, withEnv(ctx, envOptions{}, func(e *env) error {
			return wrapBench(benchScale, runScale(ctx, e, o.scale, w))
		}))
	}
	return errors.Join(errs...)
}

func (o options) validate() error {
	for _, b := range o.run {
		if !slices.Contains([]string{benchLatency, benchRequests, benchBurst, benchHotplug, benchScale, benchProfile}, b) {
			return fmt.Errorf("-run: unknown benchmark %q (want latency, requests, burst, hotplug, scale, profile)", b)
		}
	}
	if o.wants(benchLatency) && o.rounds < 7 {
		return errors.New("-rounds must be at least 7")
	}
	if o.wants(benchLatency) && (o.maxN < 0 || o.maxN > maxSecondaries) {
		return fmt.Errorf("-max-n must be 0 to %d", maxSecondaries)
	}
	if o.wants(benchRequests) && o.requestsRounds < 1 {
		return errors.New("-requests-rounds must be at least 1")
	}
	if o.baseline != "" && !o.wants(benchLatency) {
		return errors.New("-baseline needs the latency benchmark in -run")
	}
	if o.wants(benchBurst) && (o.burst.pods < 1 || o.burst.pods > maxBurstPods || o.burst.inFlight < 1) {
		return fmt.Errorf("-burst-pods must be 1 to %d (the networks are /24s), -burst-inflight at least 1", maxBurstPods)
	}
	if o.wants(benchHotplug) && (o.hotplug.pods < 1 || o.hotplug.pods > maxBurstPods || o.hotplug.timeout <= 0) {
		return fmt.Errorf("-hotplug-pods must be 1 to %d (the networks are /24s), -hotplug-timeout positive", maxBurstPods)
	}
	if o.wants(benchScale) && (o.scale.pods < 0 || o.scale.nads < 0) {
		return errors.New("-scale-pods and -scale-nads must not be negative")
	}
	return nil
}

// withEnv sets up a control plane as o asks, runs fn and tears it all down.
func withEnv(ctx context.Context, o envOptions, fn func(*env) error) error {
	e, err := setUp(ctx, o)
	if err != nil {
		return err
	}
	defer e.tearDown()
	return fn(e)
}

func wrapBench(name string, err error) error {
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}
