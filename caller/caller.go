// Package caller marks the processes braid starts, so that braid, braid-shim
// and braidd can tell when braid itself is calling them. braid never runs as
// its own delegate: the plan builder refuses braid-typed configs, and this
// mark catches what that cannot see (a plugin that execs an IPAM or a
// delegate of its own choosing from CNI_PATH, a renamed binary).
package caller

import (
	"fmt"
	"os"
	"strings"

	"github.com/containernetworking/cni/pkg/types"
)

// Env is the variable braid sets in the environment of every plugin it runs;
// its value names the container of the outer call. The plugin's own children
// (an IPAM plugin, a chained delegate) inherit it.
const Env = "BRAID_CALLER"

// Mark returns environ with the mark set to containerID, replacing any
// earlier value.
func Mark(environ []string, containerID string) []string {
	out := make([]string, 0, len(environ)+1)
	for _, kv := range environ {
		if !strings.HasPrefix(kv, Env+"=") {
			out = append(out, kv)
		}
	}
	if containerID == "" {
		containerID = "?"
	}
	return append(out, Env+"="+containerID)
}

// Check refuses to run under the mark: code 7, naming the outer call's
// container. getenv reads the environment; nil reads the process's.
func Check(getenv func(string) string) *types.Error {
	if getenv == nil {
		getenv = os.Getenv
	}
	if v := getenv(Env); v != "" {
		return Refusal(v)
	}
	return nil
}

// Refusal is the error of a braid called by braid for container.
func Refusal(container string) *types.Error {
	return types.NewError(types.ErrInvalidNetworkConfig,
		fmt.Sprintf("braid was called by braid (as a delegate, or by a delegate, of container %s): braid never runs itself as a delegate", container),
		"a network's config names braid's own plugin type, or one of its plugins runs braid from CNI_PATH")
}
