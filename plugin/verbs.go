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

// do runs one verb: forwarded to the daemon when the config names one, or
// here: wiring from the config, one deadline, the log closed after. command
// is the verb's CNI_COMMAND.
func (p *Plugin) do(args *skel.CmdArgs, command string, verb func(ctx context.Context, c *call) error) error {
	conf, err := netconf.Parse(args.StdinData)
	if err != nil {
		return err
	}
	if p.forwards(conf) {
		if handled, err := p.forward(conf, command, args); handled {
			return err
		}
	}
	c, err := p.setup(conf, args)
	if err != nil {
		return err
	}
	defer c.closeLog()
	ctx, cancel := context.WithTimeout(context.Background(), p.Timeout)
	defer cancel()
	return verb(ctx, c)
}

// Add attaches the cluster network and every network the pod selects.
func (p *Plugin) Add(args *skel.CmdArgs) error {
	return p.do(args, "ADD", func(ctx context.Context, c *call) error {
		if err := waitReadiness(ctx, c.conf.ReadinessIndicatorFile, p.ReadinessTimeout); err != nil {
			return err
		}
		pod := c.req.Pod.Namespace + "/" + c.req.Pod.Name
		pl, err := c.builder.Build(ctx, c.req)
		if err != nil {
			c.log.Error("ADD refused", "container", args.ContainerID, "pod", pod, "error", err)
			c.attacher.Refused(ctx, c.req.Pod, err)
			return err
		}
		res, err := c.attacher.Add(ctx, pl, c.conf.CNIVersion)
		if err != nil {
			c.log.Error("ADD failed", "container", args.ContainerID, "pod", pod, "error", err)
			return err
		}
		c.log.Info("ADD done", "container", args.ContainerID, "pod", pod, "interfaces", len(pl.Attachments))
		return res.PrintTo(p.Stdout)
	})
}

// Del detaches everything. It needs no API server when the journal has the
// plan, and never fails for a container it knows nothing about.
func (p *Plugin) Del(args *skel.CmdArgs) error {
	return p.do(args, "DEL", func(ctx context.Context, c *call) error {
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
	})
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
	return p.do(args, "CHECK", func(ctx context.Context, c *call) error {
		pl, err := c.attacher.Load(args.ContainerID)
		if err != nil {
			return types.NewError(types.ErrInvalidNetworkConfig, fmt.Sprintf("CHECK of container %s: no usable journal entry (was ADD run?)", args.ContainerID), err.Error())
		}
		return c.attacher.Check(ctx, pl, args.Netns)
	})
}

// Status asks the cluster network whether it is ready.
func (p *Plugin) Status(args *skel.CmdArgs) error {
	return p.do(args, "STATUS", func(ctx context.Context, c *call) error {
		c.req.Pod = plan.PodRef{}
		pl, err := c.builder.Build(ctx, c.req)
		if err != nil {
			return err
		}
		return c.attacher.Status(ctx, pl)
	})
}

// GC deletes journaled containers the runtime no longer knows.
func (p *Plugin) GC(args *skel.CmdArgs) error {
	return p.do(args, "GC", func(ctx context.Context, c *call) error {
		return c.attacher.GC(ctx, c.conf.ValidAttachments)
	})
}
