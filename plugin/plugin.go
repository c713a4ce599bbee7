package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"

	"github.com/braid-cni/braid/attach"
	"github.com/braid-cni/braid/delegate"
	"github.com/braid-cni/braid/gateway"
	"github.com/braid-cni/braid/journal"
	"github.com/braid-cni/braid/kube"
	"github.com/braid-cni/braid/nad"
	"github.com/braid-cni/braid/netconf"
	"github.com/braid-cni/braid/plan"
	"github.com/braid-cni/braid/status"
)

// Plugin is braid's thin CNI plugin.
type Plugin struct {
	Stdout io.Writer
	Stderr io.Writer
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
		Timeout:          2 * time.Minute,
		ReadinessTimeout: 45 * time.Second,
		Hostname:         host,
	}
}

// Funcs hands the verbs to skel.
func (p *Plugin) Funcs() skel.CNIFuncs {
	return skel.CNIFuncs{Add: p.Add, Del: p.Del, Check: p.Check, Status: p.Status, GC: p.GC}
}

// call is one verb's wiring.
type call struct {
	conf     *netconf.NetConf
	log      *slog.Logger
	closeLog func()
	builder  *plan.Builder
	attacher *attach.Attacher
	req      plan.Request
}

func (p *Plugin) setup(args *skel.CmdArgs) (*call, error) {
	conf, err := netconf.Parse(args.StdinData)
	if err != nil {
		return nil, err
	}
	log, closeLog, err := newLogger(conf, p.Stderr)
	if err != nil {
		return nil, err
	}
	c := &call{conf: conf, log: log, closeLog: closeLog}
	k8sArgs, err := netconf.ParseArgs(args.Args)
	if err != nil {
		closeLog()
		return nil, err
	}
	resolver := &nad.Resolver{ConfDir: conf.ConfDir}
	c.builder = &plan.Builder{Conf: conf, Resolver: resolver, Log: log}
	c.attacher = &attach.Attacher{
		Invoker: delegate.NewInvoker(conf.BinDirs(), conf.CNIDir, p.Exec),
		Journal: journal.New(conf.CNIDir),
		Routes:  gateway.ApplyToNetns,
		Log:     log,
	}
	if conf.Kubeconfig != "" {
		clients, err := kube.FromKubeconfig(conf.Kubeconfig, p.Timeout)
		if err != nil {
			closeLog()
			return nil, types.NewError(types.ErrTryAgainLater, "kubeconfig "+conf.Kubeconfig, err.Error())
		}
		c.builder.Pods = clients
		resolver.NADs = clients
		c.attacher.Recorder = &status.Writer{Client: clients.Core, Component: "braid", Node: p.Hostname}
	}
	c.req = plan.Request{
		ContainerID: args.ContainerID,
		NetNS:       args.Netns,
		IfName:      args.IfName,
		Args:        splitArgs(args.Args),
		Pod: plan.PodRef{
			Namespace: string(k8sArgs.K8S_POD_NAMESPACE),
			Name:      string(k8sArgs.K8S_POD_NAME),
			UID:       string(k8sArgs.K8S_POD_UID),
		},
		RuntimeConfig: conf.RuntimeConfig,
	}
	return c, nil
}

// Add attaches the cluster network and every network the pod selects.
func (p *Plugin) Add(args *skel.CmdArgs) error {
	c, err := p.setup(args)
	if err != nil {
		return err
	}
	defer c.closeLog()
	ctx, cancel := context.WithTimeout(context.Background(), p.Timeout)
	defer cancel()
	if err := waitReadiness(ctx, c.conf.ReadinessIndicatorFile, p.ReadinessTimeout); err != nil {
		return err
	}
	pl, err := c.builder.Build(ctx, c.req)
	if err != nil {
		c.log.Error("ADD refused", "container", args.ContainerID, "pod", c.req.Pod.Namespace+"/"+c.req.Pod.Name, "error", err)
		return err
	}
	res, err := c.attacher.Add(ctx, pl, c.conf.CNIVersion)
	if err != nil {
		c.log.Error("ADD failed", "container", args.ContainerID, "pod", c.req.Pod.Namespace+"/"+c.req.Pod.Name, "error", err)
		return err
	}
	c.log.Info("ADD done", "container", args.ContainerID, "pod", c.req.Pod.Namespace+"/"+c.req.Pod.Name, "interfaces", len(pl.Attachments))
	return res.PrintTo(p.Stdout)
}

// Del detaches everything. It needs no API server when the journal has the
// plan, and never fails for a container it knows nothing about.
func (p *Plugin) Del(args *skel.CmdArgs) error {
	c, err := p.setup(args)
	if err != nil {
		return err
	}
	defer c.closeLog()
	ctx, cancel := context.WithTimeout(context.Background(), p.Timeout)
	defer cancel()
	pl := c.planForDel(ctx, args.ContainerID)
	if pl == nil {
		return nil
	}
	if err := c.attacher.Del(ctx, pl, args.Netns); err != nil {
		c.log.Error("DEL failed", "container", args.ContainerID, "error", err)
		return err
	}
	c.log.Info("DEL done", "container", args.ContainerID, "interfaces", len(pl.Attachments))
	return nil
}

// planForDel reads the journal; without a usable entry it rebuilds the plan
// from the API, and without the API it falls back to the cluster network
// alone. nil means there is nothing to delete.
func (c *call) planForDel(ctx context.Context, containerID string) *plan.Plan {
	pl, err := c.attacher.Load(containerID)
	if err == nil {
		return pl
	}
	if !errors.Is(err, os.ErrNotExist) {
		c.log.Warn("journal entry unusable; rebuilding the plan", "container", containerID, "error", err)
	}
	pl, err = c.builder.Build(ctx, c.req)
	if err == nil {
		return pl
	}
	c.log.Warn("cannot rebuild the plan from the API; deleting the cluster network only", "container", containerID, "error", err)
	offline := *c.builder
	offline.Pods = nil
	offline.Resolver = &nad.Resolver{ConfDir: c.conf.ConfDir}
	pl, err = offline.Build(ctx, c.req)
	if err != nil {
		c.log.Error("no cluster network to delete", "container", containerID, "error", err)
		return nil
	}
	return pl
}

// Check checks every journaled attachment.
func (p *Plugin) Check(args *skel.CmdArgs) error {
	c, err := p.setup(args)
	if err != nil {
		return err
	}
	defer c.closeLog()
	ctx, cancel := context.WithTimeout(context.Background(), p.Timeout)
	defer cancel()
	pl, err := c.attacher.Load(args.ContainerID)
	if err != nil {
		return types.NewError(types.ErrInvalidNetworkConfig, fmt.Sprintf("CHECK of container %s: no usable journal entry (was ADD run?)", args.ContainerID), err.Error())
	}
	return c.attacher.Check(ctx, pl, args.Netns)
}

// Status asks the cluster network whether it is ready.
func (p *Plugin) Status(args *skel.CmdArgs) error {
	c, err := p.setup(args)
	if err != nil {
		return err
	}
	defer c.closeLog()
	ctx, cancel := context.WithTimeout(context.Background(), p.Timeout)
	defer cancel()
	c.req.Pod = plan.PodRef{}
	pl, err := c.builder.Build(ctx, c.req)
	if err != nil {
		return err
	}
	return c.attacher.Status(ctx, pl)
}

// GC deletes journaled containers the runtime no longer knows.
func (p *Plugin) GC(args *skel.CmdArgs) error {
	c, err := p.setup(args)
	if err != nil {
		return err
	}
	defer c.closeLog()
	ctx, cancel := context.WithTimeout(context.Background(), p.Timeout)
	defer cancel()
	return c.attacher.GC(ctx, c.conf.ValidAttachments)
}

// splitArgs turns CNI_ARGS into pairs to pass on unchanged.
func splitArgs(s string) [][2]string {
	var out [][2]string
	for _, kv := range strings.Split(s, ";") {
		if kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		out = append(out, [2]string{k, v})
	}
	return out
}
