// Command braid-install runs in braid's DaemonSet: it installs the braid
// binary and keeps braid's kubeconfig and CNI config current on the node,
// and removes the config again on SIGTERM. The work is in package install.
package main

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/braid-cni/braid/install"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	s, err := install.ParseFlags(os.Args[0], os.Args[1:], os.Getenv, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		log.Error("bad flags", "err", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := install.Run(ctx, s, log); err != nil {
		log.Error("install failed", "err", err)
		stop()
		os.Exit(1)
	}
}
