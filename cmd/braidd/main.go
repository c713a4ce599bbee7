// Command braidd is braid's node daemon (thick mode): the braid shim the
// runtime calls forwards each CNI request to it over a unix socket.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/braid-cni/braid/braidd"
)

func main() {
	config := flag.String("config", "/etc/braid/braidd.json", "braidd's config file (plugin keys plus the daemon's)")
	shim := flag.String("install-shim", "", "copy this braid binary into the first binDir at start (the DaemonSet's image path)")
	apiServer := flag.String("api-server", "", "API server URL replacing the in-cluster config's (token and CA stay), where the kubernetes service does not reach it")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := braidd.Main(ctx, *config, braidd.Options{ShimSource: *shim, APIServer: *apiServer}, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "braidd:", err)
		os.Exit(1)
	}
}
