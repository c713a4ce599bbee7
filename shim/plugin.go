package shim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

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
// CNI_PATH, as the runtime would run a plugin: the CNI_* variables, the
// config on stdin, a CNI error on stdout. braid, given this config, forwards
// once more (the daemon may be back), then deletes from the journal.
//
// It does not use libcni's invoke package, which links OpenTelemetry and
// net/http: their start-up would cost every exec of the shim, to serve a
// DEL that only a node without braidd sends.
func execBraid(ctx context.Context, args *skel.CmdArgs) error {
	path, ok := findBraid(args.Path)
	if !ok {
		return types.NewError(types.ErrTryAgainLater, "braid daemon not answering and no braid binary in CNI_PATH to delete from the journal", "CNI_PATH="+args.Path)
	}
	cmd := exec.CommandContext(ctx, path)
	cmd.Env = append(withoutCNI(os.Environ()),
		"CNI_COMMAND=DEL", "CNI_CONTAINERID="+args.ContainerID, "CNI_NETNS="+args.Netns,
		"CNI_IFNAME="+args.IfName, "CNI_ARGS="+args.Args, "CNI_PATH="+args.Path)
	cmd.Stdin = bytes.NewReader(args.StdinData)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, os.Stderr
	err := cmd.Run()
	if err == nil {
		return nil
	}
	// braid's own CNI error, its code kept, is the answer.
	var te types.Error
	if json.Unmarshal(out.Bytes(), &te) == nil && te.Code != 0 {
		return &te
	}
	return types.NewError(types.ErrInternal, fmt.Sprintf("%s: DEL of container %s", path, args.ContainerID), strings.TrimSpace(err.Error()+": "+out.String()))
}

// findBraid finds the braid binary in the CNI_PATH list, as libcni finds a
// plugin: the first directory that holds a regular executable file of that
// name.
func findBraid(cniPath string) (string, bool) {
	for _, dir := range filepath.SplitList(cniPath) {
		path := filepath.Join(dir, "braid")
		if info, err := os.Stat(path); err == nil && info.Mode().IsRegular() && info.Mode().Perm()&0o111 != 0 {
			return path, true
		}
	}
	return "", false
}

// withoutCNI is env without its CNI_* variables, which execBraid sets.
func withoutCNI(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		if !strings.HasPrefix(kv, "CNI_") {
			out = append(out, kv)
		}
	}
	return out
}
