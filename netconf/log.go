package netconf

import (
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/containernetworking/cni/pkg/types"
)

// Level is the slog level of logLevel; an unset level is fallback (the
// thin plugin is quiet unless asked, warn: its stderr ends up in the
// runtime's log; braidd logs info).
func (c *NetConf) Level(fallback slog.Level) slog.Level {
	switch c.LogLevel {
	case "debug", "verbose":
		return slog.LevelDebug
	case "info":
		return slog.LevelInfo
	case "warn":
		return slog.LevelWarn
	case "error", "panic":
		return slog.LevelError
	default:
		return fallback
	}
}

// StderrLogging reports whether logs go to stderr: yes unless
// "logToStderr": false.
func (c *NetConf) StderrLogging() bool {
	return c.LogToStderr == nil || *c.LogToStderr
}

// Logger opens the log the config asks for: logFile and/or stderr, at
// logLevel (warn when unset: the thin plugin's stderr ends up in the
// runtime's log). Without either, logs are dropped (stdout belongs to the
// CNI result). close closes the log file.
func (c *NetConf) Logger(stderr io.Writer) (log *slog.Logger, close func(), err error) {
	var writers []io.Writer
	close = func() {}
	if c.LogFile != "" {
		f, err := os.OpenFile(c.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return nil, nil, types.NewError(types.ErrInvalidNetworkConfig, fmt.Sprintf("invalid braid config: key \"logFile\": %v", err), "")
		}
		writers = append(writers, f)
		close = func() { _ = f.Close() }
	}
	if c.StderrLogging() {
		writers = append(writers, stderr)
	}
	if len(writers) == 0 {
		return slog.New(slog.DiscardHandler), close, nil
	}
	h := slog.NewTextHandler(io.MultiWriter(writers...), &slog.HandlerOptions{Level: c.Level(slog.LevelWarn)})
	return slog.New(h).With("pid", os.Getpid()), close, nil
}
