package netconf

import (
	"encoding/json"

	"github.com/containernetworking/cni/pkg/types"
)

// callerConf is what braidd takes from the config the runtime handed the
// shim: the version of the result it wants, the network name, the plugin
// type, the capabilities the runtime fills in and their values, and GC's
// valid attachments. Every other key in it is ignored.
type callerConf struct {
	types.NetConf
	RuntimeConfig map[string]any `json:"runtimeConfig,omitempty"`
}

// ForCaller returns the config one call runs with in braidd: c, the
// daemon's own settings, with the caller's runtime keys taken from stdin.
// braid's settings (cluster network, directories, kubeconfig, isolation,
// limits, logging) come from c alone, whatever stdin says; the result never
// forwards. Errors are code 7 naming the key, like Parse's.
func (c *NetConf) ForCaller(stdin []byte) (*NetConf, error) {
	var in callerConf
	if err := json.Unmarshal(stdin, &in); err != nil {
		return nil, decodeError(err)
	}
	out := *c
	out.NetConf = types.NetConf{
		CNIVersion:       in.CNIVersion,
		Name:             in.Name,
		Type:             in.Type,
		Capabilities:     in.Capabilities,
		ValidAttachments: in.ValidAttachments,
	}
	out.RuntimeConfig = in.RuntimeConfig
	out.DaemonSocketDir = ""
	if err := out.validateVersion(); err != nil {
		return nil, err
	}
	return &out, nil
}
