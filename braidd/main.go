package braidd

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/braid-cni/braid/netconf"
	"github.com/braid-cni/braid/version"
)

// Main reads the config file and runs the daemon, logging to w.
func Main(ctx context.Context, configPath string, opts Options, w io.Writer) error {
	data, err := os.ReadFile(configPath)
	if err != nil {
		return fmt.Errorf("read config %s: %w", configPath, err)
	}
	conf, err := netconf.ParseDaemon(data, os.Getenv, os.Hostname)
	if err != nil {
		return fmt.Errorf("config %s: %w", configPath, err)
	}
	log := slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: conf.Level(slog.LevelInfo)}))
	log.Info("braidd starting", "version", version.Version, "node", conf.NodeName, "socket", conf.SocketDir, "autoconfig", conf.Autoconfig)
	return Run(ctx, conf, opts, log)
}
