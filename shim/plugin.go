package shim

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"path/filepath"
	"time"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
)

// DefaultSocketDir is where braidd listens unless the config says otherwise.
const DefaultSocketDir = "/run/braid"

// Plugin is braid-shim, the thick mode's CNI plugin: it holds no
// credentials and links no Kubernetes client, so the runtime's exec of it
// stays cheap; every verb goes to the daemon. A DEL the daemon does not
// answer goes to Local, which deletes from the node's journal.
type Plugin struct {
	Stdout  io.Writer
	Timeout time.Duration
	// Local runs a DEL the daemon did not answer. NewPlugin's runs the full
	// braid plugin, found in CNI_PATH, on the same call.
	Local func(ctx context.Context, args *skel.CmdArgs) error
}

// NewPlugin returns the shim that writes to stdout and hands unanswered
// DELs to the braid binary.
func NewPlugin(stdout io.Writer) *Plugin {
	return &Plugin{Stdout: stdout, Timeout: 2 * time.Minute, Local: execBraid}
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
	var conf shimConf
	if err := json.Unmarshal(args.StdinData, &conf); err != nil {
		return types.NewError(types.ErrDecodingFailure, "braid-shim: decode the network config", err.Error())
	}
	if conf.DaemonSocketDir == "" {
		conf.DaemonSocketDir = DefaultSocketDir
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.Timeout)
	defer cancel()
	err := Call(ctx, p.Stdout, conf.DaemonSocketDir, command, args)
	if errors.Is(err, ErrNotAnswering) && p.Local != nil {
		return p.Local(ctx, args)
	}
	return err
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
