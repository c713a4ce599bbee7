package plugin

import (
	"context"

	"github.com/containernetworking/cni/pkg/skel"

	"github.com/braid-cni/braid/netconf"
	"github.com/braid-cni/braid/shim"
)

// forward hands a call whose config names daemonSocketDir to braid's one
// forwarder (braid-shim's, package shim): the daemon answers, and a DEL it
// does not answer runs here, through the core, from the journal.
func (p *Plugin) forward(ctx context.Context, conf *netconf.NetConf, command string, args *skel.CmdArgs) error {
	fw := &shim.Plugin{
		Stdout:  p.Stdout,
		Getenv:  p.Getenv,
		Timeout: p.Timeout,
		Local: func(ctx context.Context, args *skel.CmdArgs) error {
			// A bad logFile fails again, and is reported, in local.
			if log, closeLog, err := conf.Logger(p.Stderr); err == nil {
				log.Warn("braid daemon not answering; deleting here from the journal")
				closeLog()
			}
			return p.local(ctx, conf, "DEL", args)
		},
	}
	return fw.Run(ctx, command, args)
}
