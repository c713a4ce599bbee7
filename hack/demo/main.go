// Command demo runs braid on a single-node Kubernetes cluster on this
// machine and leaves it running for you to look at.
//
// `demo up` (`make demo`) starts etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler, containerd and a kubelet, gives the
// node a primary network (bridge braid-cni0, host-local 10.244.0.0/24),
// installs braid from deployments/ as an operator would, in thick mode
// (braidd, the node daemon) unless `-mode thin` (`make demo MODE=thin`) asks
// for the plugin alone, applies the NADs and pods of examples/, and shows
// each pod's interfaces and network-status.
// The processes outlive the command; what it changed on the host is recorded
// under /var/lib/braid-demo.
//
// `demo down` (`make demo-down`) deletes the example pods while braid is still
// installed, so that the kubelet runs braid's DEL, stops every process and
// puts the host back as it was. With nothing up it says so.
//
// Both need root and the binaries of `make tools build`.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/braid-cni/braid/e2e/framework"
)

const usage = "usage: demo up [-mode thick|thin] | demo down (as root; `make demo [MODE=thin]`, `make demo-down`)"

func main() {
	verb, err := parseArgs(os.Args[1:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "%v\n%s\n", err, usage)
		os.Exit(2)
	}
	if os.Geteuid() != 0 {
		fmt.Fprintf(os.Stderr, "demo %s: needs root (it runs a kubelet and containerd and changes the host's CNI directories): "+
			"run it as root, e.g. `sudo make demo`\n", os.Args[1])
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err = verb(ctx, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "demo %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

// parseArgs returns the verb the arguments name, bound to its flags.
func parseArgs(args []string) (func(context.Context, io.Writer) error, error) {
	if len(args) == 0 {
		return nil, errors.New("no verb")
	}
	switch args[0] {
	case "up":
		flags := flag.NewFlagSet("up", flag.ContinueOnError)
		flags.SetOutput(io.Discard) // the error says it, then the usage
		mode := flags.String("mode", string(framework.Thick), "how braid runs: thick (braidd, the node daemon) or thin (the braid plugin alone)")
		if err := flags.Parse(args[1:]); err != nil {
			return nil, fmt.Errorf("demo up: %w", err)
		}
		if flags.NArg() > 0 {
			return nil, fmt.Errorf("demo up: unexpected %q", flags.Arg(0))
		}
		m, err := framework.ParseMode(*mode)
		if err != nil {
			return nil, fmt.Errorf("demo up: %w", err)
		}
		return func(ctx context.Context, out io.Writer) error { return up(ctx, out, m) }, nil
	case "down":
		if len(args) > 1 {
			return nil, fmt.Errorf("demo down: unexpected %q", args[1])
		}
		return down, nil
	}
	return nil, fmt.Errorf("unknown verb %q", args[0])
}

// warnLog receives the framework's log and keeps its warnings: Stop reports
// what it could not put back only there.
type warnLog struct {
	mu       sync.Mutex
	warnings []string
}

func (w *warnLog) Write(p []byte) (int, error) {
	if line := string(p); strings.Contains(line, "level=WARN") {
		w.mu.Lock()
		w.warnings = append(w.warnings, strings.TrimSpace(line))
		w.mu.Unlock()
	}
	return len(p), nil
}

// take returns the warnings logged since the last call.
func (w *warnLog) take() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	var errs []error
	for _, line := range w.warnings {
		errs = append(errs, errors.New(line))
	}
	w.warnings = nil
	return errors.Join(errs...)
}

func since(t time.Time) time.Duration {
	return time.Since(t).Round(100 * time.Millisecond)
}
