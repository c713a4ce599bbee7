package nad

import (
	"encoding/json"
	"errors"
	"strings"

	"github.com/containernetworking/cni/pkg/types"
	nadutils "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/utils"
)

// ConfigField is where a NetworkAttachmentDefinition holds its CNI config;
// Config's errors begin with it.
const ConfigField = "spec.config"

// Config is the delegate config that spec.config of the
// NetworkAttachmentDefinition named name gives, exactly as braid runs it:
// the same document, with name set to the NAD's when the config has none.
// An empty (or blank) spec.config gives nil and no error: braid then reads
// the config named like the NAD from confDir, which only a node can do.
// A spec.config that is not a JSON object is CNI error 7, its message
// beginning with ConfigField.
//
// The resolver, the admission webhook and braidctl lint all take a NAD's
// config through here; whether braid can run it as a delegate
// (delegate.Load) and whether it names braid itself are checked later.
func Config(name, specConfig string) ([]byte, error) {
	if strings.TrimSpace(specConfig) == "" {
		return nil, nil
	}
	// The NAD client's GetCNIConfigFromSpec panics on "null" (it decodes
	// to a nil map and then sets "name" in it), so only objects reach it.
	var obj map[string]any
	if err := json.Unmarshal([]byte(specConfig), &obj); err != nil {
		if !json.Valid([]byte(specConfig)) {
			return nil, types.NewError(types.ErrInvalidNetworkConfig, ConfigField+" is not valid JSON", err.Error())
		}
		return nil, notObject()
	}
	if obj == nil {
		return nil, notObject()
	}
	conf, err := nadutils.GetCNIConfigFromSpec(specConfig, name)
	if err != nil {
		return nil, types.NewError(types.ErrInvalidNetworkConfig, ConfigField+" is not valid JSON", err.Error())
	}
	return conf, nil
}

func notObject() error {
	return types.NewError(types.ErrInvalidNetworkConfig, ConfigField+" is not a JSON object", "")
}

// rebuild puts what in front of the message of err, a CNI error from
// Config, keeping its code and details.
func rebuild(err error, what string) error {
	var te *types.Error
	if !errors.As(err, &te) {
		return types.NewError(types.ErrInvalidNetworkConfig, what+": "+err.Error(), "")
	}
	return types.NewError(te.Code, what+": "+te.Msg, te.Details)
}
