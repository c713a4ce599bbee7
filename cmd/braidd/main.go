// Command braidd is braid's node daemon (thick mode): the braid shim the
// runtime calls forwards each CNI request to it over a unix socket.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/braid-cni/braid/braidd"
)

func main() {
	config := flag.String("config", "/etc/braid/braidd.json", "braidd's config file (plugin keys plus the daemon's)")
	install := flag.String("install", "", "comma-separated binaries to copy into the first binDir at start: braid-shim and braid (the DaemonSet's image paths)")
	apiServer := flag.String("api-server", "", "API server URL replacing the in-cluster config's (token and CA stay), where the kubernetes service does not reach it")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := braidd.Main(ctx, *config, braidd.Options{Install: binaries(*install), APIServer: *apiServer}, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "braidd:", err)
		os.Exit(1)
	}
}

// binaries splits the --install list.
func binaries(list string) []string {
	if list == "" {
		return nil
	}
	return strings.Split(list, ",")
}
