package delegate

import (
	"errors"
	"fmt"

	"github.com/containernetworking/cni/pkg/types"
)

// Error is a delegate failure: which plugin of the chain failed and how.
type Error struct {
	Plugin string // plugin type, e.g. "bridge"
	// NotInstalled: the plugin binary was not found in the bin dirs.
	NotInstalled bool
	Err          error
}

func (e *Error) Error() string { return fmt.Sprintf("plugin %s: %v", e.Plugin, e.Err) }

func (e *Error) Unwrap() error { return e.Err }

// Rebuild turns a delegate failure into a *types.Error that names the
// network, the plugin and the interface. skel prints only the *types.Error
// of a chain, so the context goes into its message, and the delegate's own
// code is kept. Errors that carry no CNI code become ErrInternal.
func Rebuild(err error, network, ifName string) *types.Error {
	if err == nil {
		return nil
	}
	plugin := "?"
	var de *Error
	if errors.As(err, &de) {
		plugin = de.Plugin
	}
	prefix := fmt.Sprintf("network %s (plugin %s, interface %s): ", network, plugin, ifName)
	var te *types.Error
	if errors.As(err, &te) {
		return types.NewError(te.Code, prefix+te.Msg, te.Details)
	}
	return types.NewError(types.ErrInternal, prefix+err.Error(), "")
}
