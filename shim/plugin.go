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
)

// DefaultSocketDir is where braidd listens unless the config says otherwise.
const DefaultSocketDir = "/run/braid"

// Plugin is braid-shim, the thick mode's CNI plugin: it holds no
// credentials and links no Kubernetes client, so the runtime's exec of it
// stays cheap; every verb goes to the daemon. A DEL the daemon does not
// answer goes to Local, which deletes from the node's journal.
type Plugin struct {
	Stdout io.Writer
	// Getenv reads the process environment: a shim started under braid's
	// own mark (package caller) refuses to run. nil: os.Getenv.
	Getenv  func(string) string
	Timeout time.Duration
	// Local runs a DEL the daemon did not answer. NewPlugin's runs the full
	// braid plugin, found in CNI_PATH, on the same call.
	Local func(ctx context.Context, args *skel.CmdArgs) error
}

// NewPlugin returns the shim that writes to stdout and hands unanswered
// DELs to the braid binary.
func NewPlugin(stdout io.Writer) *Plugin {
	return &Plugin{Stdout: stdout, Getenv: os.Getenv, Timeout: 2 * time.Minute, Local: execBraid}
}

// Funcs hands the verbs to skel.
func (p *Plugin) Funcs() skel.CNIFuncs {
	return skel.CNIFuncs{
		Add:    func(args *skel.CmdArgs) error { return p.do("ADD", args) },
		Del:    func(args *skel.CmdArgs) error { return p.do("DEL", args) },
		Check:  func(args *skel.CmdArgs) error { return p.do("CHECK", args) },
		Status: func(args *skel.CmdArgs) error { return p.do("STATUS", args) },
		GC:     func(args *skel.CmdArgs) error { return p.do("GC", args) },
	}
}

// shimConf is the one key the shim reads from its config.
type shimConf struct {
	DaemonSocketDir string `json:"daemonSocketDir"`
}

func (p *Plugin) do(command string, args *skel.CmdArgs) error {
	if err := caller.Check(p.Getenv); err != nil {
		return err
	}
	var conf shimConf
	if err := json.Unmarshal(args.StdinData, &conf); err != nil {
		return types.NewError(types.ErrDecodingFailure, "braid-shim: decode the network config", err.Error())
	}
	if conf.DaemonSocketDir == "" {
		conf.DaemonSocketDir = DefaultSocketDir
	}
	err := p.call(command, args, conf.DaemonSocketDir)
	if errors.Is(err, ErrNotAnswering) && p.Local != nil {
		// A fresh deadline: waiting for the daemon may have used this
		// one up, and the pod must still be torn down.
		ctx, cancel := context.WithTimeout(context.Background(), p.Timeout)
		defer cancel()
		return p.Local(ctx, args)
	}
	return err
}

func (p *Plugin) call(command string, args *skel.CmdArgs, socketDir string) error {
	ctx, cancel := context.WithTimeout(context.Background(), p.Timeout)
	defer cancel()
	return Call(ctx, p.Stdout, socketDir, command, args)
}

// execBraid runs the same DEL through the braid binary next to the shim in
// CNI_PATH. braid tries the daemon once more, then deletes from the journal.
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
