package delegate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
)

// Delegate is one network's CNI configuration: a plugin config or a conflist.
type Delegate struct {
	list   *libcni.NetworkConfigList
	isList bool
}

// Load parses delegate config bytes. A document with a "plugins" key is a
// conflist, anything else a single plugin config. The bytes are kept as they
// are; failures are CNI error 7 (invalid config).
func Load(data []byte) (*Delegate, error) {
	var probe struct {
		Plugins json.RawMessage `json:"plugins"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, types.NewError(types.ErrInvalidNetworkConfig, "invalid delegate config", err.Error())
	}
	if probe.Plugins != nil {
		list, err := libcni.NetworkConfFromBytes(data)
		if err != nil {
			return nil, types.NewError(types.ErrInvalidNetworkConfig, "invalid delegate conflist", err.Error())
		}
		if len(list.Plugins) == 0 {
			return nil, types.NewError(types.ErrInvalidNetworkConfig, fmt.Sprintf("delegate conflist %q has no plugins", list.Name), "")
		}
		return &Delegate{list: list, isList: true}, nil
	}
	conf, err := libcni.NetworkPluginConfFromBytes(data)
	if err != nil {
		return nil, types.NewError(types.ErrInvalidNetworkConfig, "invalid delegate config", err.Error())
	}
	if conf.Network.Type == "" {
		return nil, types.NewError(types.ErrInvalidNetworkConfig, fmt.Sprintf("delegate config %q has no type", conf.Network.Name), "")
	}
	if conf.Network.Name == "" {
		return nil, types.NewError(types.ErrInvalidNetworkConfig, fmt.Sprintf("delegate config of type %q has no name", conf.Network.Type), "")
	}
	list := &libcni.NetworkConfigList{
		Name:       conf.Network.Name,
		CNIVersion: conf.Network.CNIVersion,
		Plugins:    []*libcni.PluginConfig{conf},
		Bytes:      data,
	}
	return &Delegate{list: list}, nil
}

// Name is the CNI network name.
func (d *Delegate) Name() string { return d.list.Name }

// CNIVersion is the config's cniVersion.
func (d *Delegate) CNIVersion() string { return d.list.CNIVersion }

// IsList reports whether the config is a conflist.
func (d *Delegate) IsList() bool { return d.isList }

// Bytes returns the config exactly as loaded.
func (d *Delegate) Bytes() []byte { return d.list.Bytes }

// Types lists the plugin types in chain order.
func (d *Delegate) Types() []string {
	out := make([]string, 0, len(d.list.Plugins))
	for _, p := range d.list.Plugins {
		out = append(out, p.Network.Type)
	}
	return out
}

// Binary is one plugin binary a config makes libcni, or one of its
// plugins, run from the bin dirs.
type Binary struct {
	Field string // where the config names it: "type", "plugins[1].ipam.type", ...
	Type  string
}

// Binaries lists every binary the config names, in chain order: each
// plugin's type and the type of its IPAM plugin, which the plugin runs
// itself from CNI_PATH.
func (d *Delegate) Binaries() []Binary {
	var out []Binary
	for i, p := range d.list.Plugins {
		prefix := ""
		if d.isList {
			prefix = fmt.Sprintf("plugins[%d].", i)
		}
		out = append(out, Binary{Field: prefix + "type", Type: p.Network.Type})
		if p.Network.IPAM.Type != "" {
			out = append(out, Binary{Field: prefix + "ipam.type", Type: p.Network.IPAM.Type})
		}
	}
	return out
}

// Capabilities lists the capabilities that any plugin of the chain declares, sorted.
func (d *Delegate) Capabilities() []string {
	seen := map[string]bool{}
	for _, p := range d.list.Plugins {
		for c, on := range p.Network.Capabilities {
			if on {
				seen[c] = true
			}
		}
	}
	out := make([]string, 0, len(seen))
	for c := range seen {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}

// InjectCNIArgs merges args into "args.cni" of the config (of every plugin of
// a conflist) and returns the new bytes. Every other field is kept; numbers
// keep their exact text.
func InjectCNIArgs(data []byte, args map[string]any) ([]byte, error) {
	if len(args) == 0 {
		return data, nil
	}
	doc, err := decodeObject(data)
	if err != nil {
		return nil, fmt.Errorf("inject cni-args: %w", err)
	}
	if raw, ok := doc["plugins"]; ok {
		plugins, ok := raw.([]any)
		if !ok {
			return nil, fmt.Errorf("inject cni-args: \"plugins\" is %T, not a list", raw)
		}
		for i, p := range plugins {
			obj, ok := p.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("inject cni-args: plugin %d is %T, not an object", i, p)
			}
			mergeCNIArgs(obj, args)
		}
	} else {
		mergeCNIArgs(doc, args)
	}
	return json.Marshal(doc)
}

func mergeCNIArgs(obj map[string]any, args map[string]any) {
	outer, _ := obj["args"].(map[string]any)
	if outer == nil {
		outer = map[string]any{}
	}
	inner, _ := outer["cni"].(map[string]any)
	if inner == nil {
		inner = map[string]any{}
	}
	for k, v := range args {
		inner[k] = v
	}
	outer["cni"] = inner
	obj["args"] = outer
}

func decodeObject(data []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		return nil, err
	}
	if doc == nil {
		return nil, fmt.Errorf("config is not a JSON object")
	}
	return doc, nil
}

// InjectDeviceID sets "deviceID" in the config (in the first plugin of a
// conflist: the one that creates the interface), the key SR-IOV CNI and
// similar plugins read the allocated device from. A host-device plugin that
// names no device of its own also gets the ID as "pciBusID" when it is a PCI
// address. Every other field is kept; numbers keep their exact text.
func InjectDeviceID(data []byte, id string) ([]byte, error) {
	doc, err := decodeObject(data)
	if err != nil {
		return nil, fmt.Errorf("inject deviceID: %w", err)
	}
	first := doc
	if raw, ok := doc["plugins"]; ok {
		plugins, ok := raw.([]any)
		if !ok || len(plugins) == 0 {
			return nil, fmt.Errorf("inject deviceID: \"plugins\" is not a non-empty list")
		}
		if first, ok = plugins[0].(map[string]any); !ok {
			return nil, fmt.Errorf("inject deviceID: plugin 0 is %T, not an object", plugins[0])
		}
	}
	first["deviceID"] = id
	if first["type"] == "host-device" && isPCIAddress(id) && !hasAny(first, "device", "hwaddr", "kernelpath", "pciBusID") {
		first["pciBusID"] = id
	}
	return json.Marshal(doc)
}

// isPCIAddress reports whether id looks like a PCI address,
// domain:bus:device.function ("0000:3b:02.1").
func isPCIAddress(id string) bool {
	var domain, bus, dev, fn uint
	n, err := fmt.Sscanf(id, "%4x:%2x:%2x.%1x", &domain, &bus, &dev, &fn)
	return err == nil && n == 4 && len(id) == len("0000:00:00.0")
}

func hasAny(obj map[string]any, keys ...string) bool {
	for _, k := range keys {
		if v, ok := obj[k]; ok && v != "" && v != nil {
			return true
		}
	}
	return false
}
