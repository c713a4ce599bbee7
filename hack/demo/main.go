// Command demo runs braid on a single-node Kubernetes cluster on this
// machine and leaves it running for you to look at.
//
// `demo up` (`make demo`) starts etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler, containerd and a kubelet, gives the
// node a primary network (bridge braid-cni0, host-local 10.244.0.0/24),
// installs braid from deployments/ as an operator would, applies the NADs and
// pods of examples/, and shows each pod's interfaces and network-status.
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
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"
)

const usage = "usage: demo up|down (as root; `make demo`, `make demo-down`)"

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	verbs := map[string]func(context.Context, io.Writer) error{"up": up, "down": down}
	verb, ok := verbs[os.Args[1]]
	if !ok {
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	if os.Geteuid() != 0 {
		fmt.Fprintf(os.Stderr, "demo %s: needs root (it runs a kubelet and containerd and changes the host's CNI directories): "+
			"run it as root, e.g. `sudo make demo`\n", os.Args[1])
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := verb(ctx, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "demo %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
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
