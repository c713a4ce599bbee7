package plugin

import (
	"context"
	"errors"

	"github.com/containernetworking/cni/pkg/skel"

	"github.com/braid-cni/braid/netconf"
	"github.com/braid-cni/braid/shim"
)

// forward hands the call to the daemon under a deadline of its own and
// prints its answer. handled is false only for a DEL the daemon did not
// answer: the caller then runs it here, from the journal, under a fresh
// deadline, so that a pod can always be torn down.
func (p *Plugin) forward(ctx context.Context, conf *netconf.NetConf, command string, args *skel.CmdArgs) (handled bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, p.Timeout)
	defer cancel()
	err = shim.Call(ctx, p.Stdout, conf.DaemonSocketDir, command, args)
	if !errors.Is(err, shim.ErrNotAnswering) {
		return true, err
	}
	// A bad logFile fails again, and is reported, in setup.
	if log, closeLog, lerr := conf.Logger(p.Stderr); lerr == nil {
		log.Warn("braid daemon not answering; deleting here from the journal", "error", err)
		closeLog()
	}
	return false, nil
}
