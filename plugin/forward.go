package plugin

import (
	"context"
	"fmt"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"

	"github.com/braid-cni/braid/netconf"
	"github.com/braid-cni/braid/shim"
)

// codeNotAvailable is the spec's STATUS code 50: the plugin cannot
// serve ADD. The types package has no name for it.
const codeNotAvailable uint = 50

// forwards reports whether this call goes to the daemon (thick mode).
func (p *Plugin) forwards(conf *netconf.NetConf) bool {
	return conf.DaemonSocketDir != "" && !p.Daemon
}

// forward hands the call to the daemon under the verb's deadline and prints
// its answer. handled is false only for a DEL the daemon did not answer: the
// caller then runs it here, from the journal, so that a pod can always be
// torn down.
func (p *Plugin) forward(conf *netconf.NetConf, command string, args *skel.CmdArgs) (handled bool, err error) {
	sock := shim.SocketPath(conf.DaemonSocketDir)
	ctx, cancel := context.WithTimeout(context.Background(), p.Timeout)
	defer cancel()
	resp, err := shim.Forward(ctx, sock, shim.NewRequest(command, args))
	if err != nil {
		return p.daemonDown(conf, command, sock, err)
	}
	if _, err := p.Stdout.Write(resp.Stdout); err != nil {
		return true, types.NewError(types.ErrIOFailure, fmt.Sprintf("print the braid daemon's answer to %s of container %s", command, args.ContainerID), err.Error())
	}
	if resp.Error != nil {
		// A nil *types.Error must not become a non-nil error.
		return true, resp.Error
	}
	return true, nil
}

// daemonDown decides what a call does when the daemon did not answer: DEL
// runs here, STATUS reports the plugin unavailable, anything else is to be
// tried again later.
func (p *Plugin) daemonDown(conf *netconf.NetConf, command, sock string, cause error) (bool, error) {
	msg := "braid daemon not answering on " + sock
	switch command {
	case "DEL":
		// A bad logFile fails again, and is reported, in setup.
		if log, closeLog, err := newLogger(conf, p.Stderr); err == nil {
			log.Warn("braid daemon not answering; deleting here from the journal", "socket", sock, "error", cause)
			closeLog()
		}
		return false, nil
	case "STATUS":
		return true, types.NewError(codeNotAvailable, msg, cause.Error())
	default:
		return true, types.NewError(types.ErrTryAgainLater, msg, cause.Error())
	}
}
