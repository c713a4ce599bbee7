package shim

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"

	"github.com/braid-cni/braid/wire"
)

// ErrNotAnswering is wrapped by call's error for a DEL the daemon did not
// answer: the caller deletes from the node's journal itself, so that a pod
// can always be torn down.
var ErrNotAnswering = errors.New("braid daemon not answering")

// call forwards command to the daemon listening in socketDir, copies what
// the verb printed to stdout and returns the verb's CNI error, its code
// kept. When the daemon does not answer, STATUS fails with code 50 and ADD,
// CHECK and GC with code 11 (try again later), each naming the socket; DEL
// returns an error wrapping ErrNotAnswering.
func call(ctx context.Context, stdout io.Writer, socketDir, command string, args *skel.CmdArgs) error {
	sock := wire.SocketPath(socketDir)
	resp, err := wire.Forward(ctx, sock, wire.NewRequest(command, args))
	if err != nil {
		return notAnswering(command, sock, err)
	}
	if _, err := stdout.Write(resp.Stdout); err != nil {
		return types.NewError(types.ErrIOFailure, fmt.Sprintf("print the braid daemon's answer to %s of container %s", command, args.ContainerID), err.Error())
	}
	if resp.Error != nil {
		// A nil *types.Error must not become a non-nil error.
		return resp.Error
	}
	return nil
}

func notAnswering(command, sock string, cause error) error {
	msg := ErrNotAnswering.Error() + " on " + sock
	switch command {
	case "DEL":
		return fmt.Errorf("%w on %s: %w", ErrNotAnswering, sock, cause)
	case "STATUS":
		return types.NewError(wire.CodeNotAvailable, msg, cause.Error())
	default:
		return types.NewError(types.ErrTryAgainLater, msg, cause.Error())
	}
}
