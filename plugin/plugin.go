package plugin

import (
	"context"
	"io"
	"os"
	"time"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"

	"github.com/braid-cni/braid/attacher"
	"github.com/braid-cni/braid/caller"
	"github.com/braid-cni/braid/devices"
	"github.com/braid-cni/braid/kube"
	"github.com/braid-cni/braid/netconf"
	"github.com/braid-cni/braid/status"
)

// Plugin is the thin CNI plugin: its config on stdin is the runtime's,
// trusted, and it talks to the API server itself.
type Plugin struct {
	Stdout io.Writer
	Stderr io.Writer
	// Getenv reads the process environment: a braid started under
	// braid's own mark (package caller) refuses to run. nil: os.Getenv.
	Getenv func(string) string
	// Exec runs delegate binaries; nil runs them for real.
	Exec invoke.Exec
	// Timeout is the deadline of one verb.
	Timeout time.Duration
	// ReadinessTimeout bounds the wait for readinessindicatorfile.
	ReadinessTimeout time.Duration
	// Hostname names this node in events.
	Hostname string
}

// New returns a plugin that talks to the real process.
func New() *Plugin {
	host, _ := os.Hostname()
	return &Plugin{
		Stdout:           os.Stdout,
		Stderr:           os.Stderr,
		Getenv:           os.Getenv,
		Timeout:          netconf.VerbTimeout,
		ReadinessTimeout: netconf.ReadinessTimeout,
		Hostname:         host,
	}
}

// Funcs hands the verbs to skel. Each first refuses to run under braid's
// own mark: braid never runs as its own delegate.
func (p *Plugin) Funcs() skel.CNIFuncs {
	verb := func(command string) func(*skel.CmdArgs) error {
		return func(args *skel.CmdArgs) error {
			if err := caller.Check(p.Getenv); err != nil {
				return err
			}
			return p.Run(context.Background(), command, args)
		}
	}
	return skel.CNIFuncs{Add: verb("ADD"), Del: verb("DEL"), Check: verb("CHECK"), Status: verb("STATUS"), GC: verb("GC")}
}

// Add, Del, Check, Status and GC run the verb with no deadline but the
// plugin's Timeout.
func (p *Plugin) Add(args *skel.CmdArgs) error    { return p.Run(context.Background(), "ADD", args) }
func (p *Plugin) Del(args *skel.CmdArgs) error    { return p.Run(context.Background(), "DEL", args) }
func (p *Plugin) Check(args *skel.CmdArgs) error  { return p.Run(context.Background(), "CHECK", args) }
func (p *Plugin) Status(args *skel.CmdArgs) error { return p.Run(context.Background(), "STATUS", args) }
func (p *Plugin) GC(args *skel.CmdArgs) error     { return p.Run(context.Background(), "GC", args) }

// Run runs one verb (its CNI_COMMAND) until ctx ends or the plugin's
// Timeout passes: forwarded to the daemon when the config names one, else
// here, through the core.
func (p *Plugin) Run(ctx context.Context, command string, args *skel.CmdArgs) error {
	conf, err := netconf.Parse(args.StdinData)
	if err != nil {
		return err
	}
	if conf.DaemonSocketDir != "" {
		return p.forward(ctx, conf, command, args)
	}
	return p.local(ctx, conf, command, args)
}

// local runs the verb through the core: the config and CNI_ARGS become the
// core's Request, the config's kubeconfig its API access, one deadline,
// ADD's result printed.
func (p *Plugin) local(ctx context.Context, conf *netconf.NetConf, command string, args *skel.CmdArgs) error {
	log, closeLog, err := conf.Logger(p.Stderr)
	if err != nil {
		return err
	}
	defer closeLog()
	req, err := attacher.NewRequest(conf, args.ContainerID, args.Netns, args.IfName, args.Args)
	if err != nil {
		return err
	}
	api, err := p.api(conf)
	if err != nil {
		return err
	}
	core := attacher.New(conf, attacher.Options{API: api, Exec: p.Exec, ReadinessTimeout: p.ReadinessTimeout, Log: log})
	ctx, cancel := context.WithTimeout(ctx, p.Timeout)
	defer cancel()
	res, err := core.Run(ctx, command, req)
	if err != nil || res == nil {
		return err
	}
	return res.PrintTo(p.Stdout)
}

// api builds clients from the config's kubeconfig; none without it.
func (p *Plugin) api(conf *netconf.NetConf) (*attacher.API, error) {
	if conf.Kubeconfig == "" {
		return nil, nil
	}
	clients, err := kube.FromKubeconfig(conf.Kubeconfig, p.Timeout)
	if err != nil {
		return nil, types.NewError(types.ErrTryAgainLater, "kubeconfig "+conf.Kubeconfig, err.Error())
	}
	return &attacher.API{
		Pods:     clients,
		NADs:     clients,
		Recorder: &status.Writer{Client: clients.Core, Component: "braid", Node: p.Hostname},
		Claims:   &devices.Claims{Client: clients.Core},
	}, nil
}
