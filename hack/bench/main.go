// Command bench measures what braid adds to a pod's network set-up: for 0, 1,
// 4, 8 and 16 secondary networks it times CNI ADD and DEL through libcni, as
// a runtime drives them, in four modes:
//
//   - floor: the same delegates (the cluster network, then each NAD's
//     config) invoked one by one directly with libcni, no braid;
//   - thin: the braid plugin, talking to the API server itself;
//   - thick: the braid shim forwarding to braidd;
//   - thick+parallel: the same with braidd's "parallelAttach": true.
//
// It prints the median ADD and DEL per N and mode, with ADD's ratio to and
// excess over the floor, and plots ADD against N into bench.png.
//
// It starts its own etcd and kube-apiserver (e2e/framework), so it needs
// root and the binaries of `make tools build`; `make bench` runs it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// options are the command line's settings.
type options struct {
	rounds int
	warmup int
	out    string
	maxN   int
}

func main() {
	var o options
	flag.IntVar(&o.rounds, "rounds", 9, "measured ADD+DEL rounds per N and mode (at least 7)")
	flag.IntVar(&o.warmup, "warmup", 1, "unmeasured rounds before them")
	flag.StringVar(&o.out, "out", "bench.png", "where to write the plot")
	flag.Parse()
	o.maxN = maxSecondaries
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		stop()
		os.Exit(1)
	}
}

func run(ctx context.Context, o options, w io.Writer) error {
	if o.rounds < 7 {
		return errors.New("-rounds must be at least 7")
	}
	if os.Geteuid() != 0 {
		return errors.New("needs root (network namespaces, bridges)")
	}
	start := time.Now()
	e, err := setUp(ctx, o.maxN)
	if err != nil {
		return err
	}
	defer e.tearDown()
	results, err := measureAll(ctx, e, o)
	if err != nil {
		return err
	}
	printTable(w, results)
	if err := writePlot(o.out, results); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nplot: %s; %d rounds (+%d warm-up) per N and mode; took %s\n",
		o.out, o.rounds, o.warmup, time.Since(start).Round(time.Second))
	return nil
}
