package plugin

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"

	"github.com/braid-cni/braid/nad"
	"github.com/braid-cni/braid/netconf"
	"github.com/braid-cni/braid/plan"
)

// Run runs one verb (its CNI_COMMAND) until ctx ends or the plugin's
// Timeout passes: forwarded to the daemon when the config names one (thin
// plugin only), or here: wiring from the config, the container's lock for
// the verbs of one container, the log closed after. braidd calls it with
// the shim's connection as ctx, so a runtime that gives up cancels the
// verb (an ADD then rolls back).
func (p *Plugin) Run(ctx context.Context, command string, args *skel.CmdArgs) error {
	verb, ok := p.verbs()[command]
	if !ok {
		return types.NewError(types.ErrInvalidEnvironmentVariables, fmt.Sprintf("unknown CNI_COMMAND %q", command), "")
	}
	conf, err := p.config(args.StdinData)
	if err != nil {
		return err
	}
	if p.Settings == nil && conf.DaemonSocketDir != "" {
		if handled, err := p.forward(ctx, conf, command, args); handled {
			return err
		}
	}
	c, err := p.setup(conf, args)
	if err != nil {
		return err
	}
	defer c.closeLog()
	ctx, cancel := context.WithTimeout(ctx, p.Timeout)
	defer cancel()
	if !perContainer(command) {
		return verb(ctx, c)
	}
	held, err := c.locks.Lock(ctx, args.ContainerID)
	if err != nil {
		return types.NewError(types.ErrTryAgainLater, fmt.Sprintf("%s of container %s", command, args.ContainerID), err.Error())
	}
	err = verb(ctx, c)
	if command == "DEL" && err == nil {
		// braid is done with the container: its lock file goes too.
		held.Remove()
	} else {
		held.Unlock()
	}
	return err
}

// perContainer reports whether command acts on one container: those run
// under its lock (GC takes the lock of each container it deletes).
func perContainer(command string) bool {
	return command == "ADD" || command == "DEL" || command == "CHECK"
}

// config is the call's braid config: braidd's settings with the caller's
// runtime keys, or the thin plugin's config on stdin.
func (p *Plugin) config(stdin []byte) (*netconf.NetConf, error) {
	if p.Settings != nil {
		settings, err := p.Settings()
		if err != nil {
			return nil, err
		}
		return settings.ForCaller(stdin)
	}
	return netconf.Parse(stdin)
}

type verbFunc func(ctx context.Context, c *call) error

func (p *Plugin) verbs() map[string]verbFunc {
	return map[string]verbFunc{"ADD": p.add, "DEL": p.del, "CHECK": p.check, "STATUS": p.status, "GC": p.gc}
}

// Add, Del, Check, Status and GC run the verb with no deadline but the
// plugin's Timeout: skel's entry points.
func (p *Plugin) Add(args *skel.CmdArgs) error    { return p.Run(context.Background(), "ADD", args) }
func (p *Plugin) Del(args *skel.CmdArgs) error    { return p.Run(context.Background(), "DEL", args) }
func (p *Plugin) Check(args *skel.CmdArgs) error  { return p.Run(context.Background(), "CHECK", args) }
func (p *Plugin) Status(args *skel.CmdArgs) error { return p.Run(context.Background(), "STATUS", args) }
func (p *Plugin) GC(args *skel.CmdArgs) error     { return p.Run(context.Background(), "GC", args) }

// add attaches the cluster network and every network the pod selects.
func (p *Plugin) add(ctx context.Context, c *call) error {
	if err := waitReadiness(ctx, c.conf.ReadinessIndicatorFile, p.ReadinessTimeout); err != nil {
		return err
	}
	id, pod := c.req.ContainerID, c.req.Pod.Namespace+"/"+c.req.Pod.Name
	pl, err := c.builder.Build(ctx, c.req)
	if err != nil {
		c.log.Error("ADD refused", "container", id, "pod", pod, "error", err)
		c.attacher.Refused(ctx, c.req.Pod, err)
		return err
	}
	res, err := c.attacher.Add(ctx, pl, c.conf.CNIVersion)
	if err != nil {
		c.log.Error("ADD failed", "container", id, "pod", pod, "error", err)
		return err
	}
	c.log.Info("ADD done", "container", id, "pod", pod, "interfaces", len(pl.Attachments))
	return res.PrintTo(p.Stdout)
}

// del detaches everything. It needs no API server when the journal has the
// plan, and never fails for a container it knows nothing about.
func (p *Plugin) del(ctx context.Context, c *call) error {
	id := c.req.ContainerID
	pl := c.planForDel(ctx, id)
	if pl == nil {
		return nil
	}
	if err := c.attacher.Del(ctx, pl, c.req.NetNS); err != nil {
		c.log.Error("DEL failed", "container", id, "error", err)
		return err
	}
	c.log.Info("DEL done", "container", id, "interfaces", len(pl.Attachments))
	return nil
}

// planForDel reads the journal; without a usable entry it rebuilds the plan
// from the API, and without the API it falls back to the cluster network
// alone. nil means there is nothing to delete.
func (c *call) planForDel(ctx context.Context, containerID string) *plan.Plan {
	pl, err := c.attacher.Journal.Load(containerID)
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

// check checks every journaled attachment.
func (p *Plugin) check(ctx context.Context, c *call) error {
	id := c.req.ContainerID
	pl, err := c.attacher.Journal.Load(id)
	if err != nil {
		return types.NewError(types.ErrInvalidNetworkConfig, fmt.Sprintf("CHECK of container %s: no usable journal entry (was ADD run?)", id), err.Error())
	}
	return c.attacher.Check(ctx, pl, c.req.NetNS)
}

// status asks the cluster network whether it is ready.
func (p *Plugin) status(ctx context.Context, c *call) error {
	c.req.Pod = plan.PodRef{}
	pl, err := c.builder.Build(ctx, c.req)
	if err != nil {
		return err
	}
	return c.attacher.Status(ctx, pl)
}

// gc deletes journaled containers the runtime no longer knows.
func (p *Plugin) gc(ctx context.Context, c *call) error {
	return c.attacher.GC(ctx, c.conf.ValidAttachments)
}
