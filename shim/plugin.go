package shim

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"

	"github.com/braid-cni/braid/caller"
	"github.com/braid-cni/braid/wire"
)

// Plugin is the forwarder: braid-shim, the thick mode's CNI plugin, which
// holds no credentials and links no Kubernetes client, so the runtime's
// exec of it stays cheap; and the thin braid for a config that names
// daemonSocketDir. Every verb goes to the daemon. A DEL the daemon does not
// answer goes to Local, which deletes from the node's journal.
type Plugin struct {
	Stdout io.Writer
	// Getenv reads the process environment: a shim started under braid's
	// own mark (package caller) refuses to run. nil: os.Getenv.
	Getenv  func(string) string
	Timeout time.Duration
	// Local runs a DEL the daemon did not answer. NewPlugin's runs the full
	// braid plugin, found in CNI_PATH, on the same call; the thin braid
	// runs it in-process.
	Local func(ctx context.Context, args *skel.CmdArgs) error
}

// NewPlugin returns the shim that writes to stdout and hands unanswered
// DELs to the braid binary.
func NewPlugin(stdout io.Writer) *Plugin {
	return &Plugin{Stdout: stdout, Getenv: os.Getenv, Timeout: wire.VerbTimeout, Local: execBraid}
}

// Funcs hands the verbs to skel.
func (p *Plugin) Funcs() skel.CNIFuncs {
	verb := func(command string) func(*skel.CmdArgs) error {
		return func(args *skel.CmdArgs) error { return p.Run(context.Background(), command, args) }
	}
	return skel.CNIFuncs{Add: verb("ADD"), Del: verb("DEL"), Check: verb("CHECK"), Status: verb("STATUS"), GC: verb("GC")}
}

// shimConf is the one key the shim reads from its config.
type shimConf struct {
	DaemonSocketDir string `json:"daemonSocketDir"`
}

// Run forwards one verb (its CNI_COMMAND) to the daemon the config names,
// under the plugin's Timeout, after refusing to run under braid's own mark.
func (p *Plugin) Run(ctx context.Context, command string, args *skel.CmdArgs) error {
	if err := caller.Check(p.Getenv); err != nil {
		return err
	}
	var conf shimConf
	if err := json.Unmarshal(args.StdinData, &conf); err != nil {
		return types.NewError(types.ErrDecodingFailure, "braid-shim: decode the network config", err.Error())
	}
	if conf.DaemonSocketDir == "" {
		conf.DaemonSocketDir = wire.DefaultSocketDir
	}
	err := p.forward(ctx, command, args, conf.DaemonSocketDir)
	if errors.Is(err, ErrNotAnswering) && p.Local != nil {
		// A fresh deadline: waiting for the daemon may have used this
		// one up, and the pod must still be torn down.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.Timeout)
		defer cancel()
		return p.Local(ctx, args)
	}
	return err
}

func (p *Plugin) forward(ctx context.Context, command string, args *skel.CmdArgs, socketDir string) error {
	ctx, cancel := context.WithTimeout(ctx, p.Timeout)
	defer cancel()
	return call(ctx, p.Stdout, socketDir, command, args)
}

// execBraid runs the same DEL through the braid binary next to the shim in
// CNI_PATH. braid, given this config, forwards once more (the daemon may be
// back), then deletes from the journal.
func execBraid(ctx context.Context, args *skel.CmdArgs) error {
	path, err := invoke.FindInPath("braid", filepath.SplitList(args.Path))
	if err != nil {
		return types.NewError(types.ErrTryAgainLater, "braid daemon not answering and no braid binary in CNI_PATH to delete from the journal", err.Error())
	}
	cniArgs := &invoke.Args{
		Command:       "DEL",
		ContainerID:   args.ContainerID,
		NetNS:         args.Netns,
		IfName:        args.IfName,
		PluginArgsStr: args.Args,
		Path:          args.Path,
	}
	// braid's own CNI error, its code kept, is the answer.
	return invoke.ExecPluginWithoutResult(ctx, path, args.StdinData, cniArgs, nil)
}
