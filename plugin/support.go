package plugin

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/braid-cni/braid/netconf"
)

// logger is the call's log: the plugin's own when set (braidd's), else
// the one the config asks for.
func (p *Plugin) logger(conf *netconf.NetConf) (*slog.Logger, func(), error) {
	if p.Log != nil {
		return p.Log, func() {}, nil
	}
	return newLogger(conf, p.Stderr)
}

// newLogger builds the logger the config asks for: logFile and/or stderr.
// Without either, logs are dropped (stdout belongs to the CNI result).
func newLogger(conf *netconf.NetConf, stderr io.Writer) (*slog.Logger, func(), error) {
	var writers []io.Writer
	closeFn := func() {}
	if conf.LogFile != "" {
		f, err := os.OpenFile(conf.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return nil, nil, types.NewError(types.ErrInvalidNetworkConfig, fmt.Sprintf("invalid braid config: key \"logFile\": %v", err), "")
		}
		writers = append(writers, f)
		closeFn = func() { _ = f.Close() }
	}
	if conf.StderrLogging() {
		writers = append(writers, stderr)
	}
	if len(writers) == 0 {
		return slog.New(slog.DiscardHandler), closeFn, nil
	}
	h := slog.NewTextHandler(io.MultiWriter(writers...), &slog.HandlerOptions{Level: conf.Level(slog.LevelWarn)})
	return slog.New(h).With("pid", os.Getpid()), closeFn, nil
}

// waitReadiness waits for the readiness indicator file (the cluster network's
// sign that it is up). Not there in time: try again later.
func waitReadiness(ctx context.Context, path string, limit time.Duration) error {
	if path == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return types.NewError(types.ErrTryAgainLater, fmt.Sprintf("readiness indicator file %s did not appear within %s", path, limit), "")
		case <-tick.C:
		}
	}
}
