package install

import (
	"encoding/json"
	"fmt"
	"path/filepath"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/braid-cni/braid/netconf"
)

// Defaults for Options fields left empty.
const (
	DefaultName        = "braid-net"
	DefaultHostConfDir = "/etc/cni/net.d"
)

// Options are the settings written into braid's config. Every path is as
// the host sees it: the runtime runs braid on the host, not in the
// installer's container.
type Options struct {
	// Name is the conflist's network name. Default DefaultName.
	Name string
	// Kubeconfig is braid's kubeconfig; empty writes no kubeconfig key.
	Kubeconfig string
	// HostConfDir is the node's CNI config directory, where the primary
	// config lives. Default DefaultHostConfDir.
	HostConfDir string
	// CNIDir, BinDir and ConfDir default to netconf's defaults.
	CNIDir, BinDir, ConfDir string
	LogFile, LogLevel       string
	NamespaceIsolation      bool
	GlobalNamespaces        string
	ReadinessIndicatorFile  string
	// DaemonSocketDir, when set, makes braid a shim that forwards to the
	// node daemon (thick mode).
	DaemonSocketDir string
}

// withDefaults returns o with its empty fields set to their defaults.
func (o Options) withDefaults() Options {
	set := func(field *string, value string) {
		if *field == "" {
			*field = value
		}
	}
	set(&o.Name, DefaultName)
	set(&o.HostConfDir, DefaultHostConfDir)
	set(&o.CNIDir, netconf.DefaultCNIDir)
	set(&o.BinDir, netconf.DefaultBinDir)
	set(&o.ConfDir, netconf.DefaultConfDir)
	return o
}

// conflist is braid's config file: a CNI conflist whose one plugin is
// braid, written as netconf.NetConf (the one owner of braid's keys).
type conflist struct {
	CNIVersion string            `json:"cniVersion"`
	Name       string            `json:"name"`
	Plugins    []netconf.NetConf `json:"plugins"`
}

// Config returns braid's conflist for the primary config primary, read
// from primaryFile. It takes the primary's cniVersion and the union of its
// plugins' capabilities, and names HostConfDir/<base of primaryFile> as
// clusterNetwork. The plugin entry, with the name and cniVersion the
// runtime injects, must pass netconf.Parse, or Config returns its error.
func Config(primaryFile string, primary []byte, o Options) ([]byte, error) {
	p, err := parsePrimary(primaryFile, primary)
	if err != nil {
		return nil, err
	}
	o = o.withDefaults()
	// Thick mode gets the shim, which links no Kubernetes client.
	pluginType := netconf.Type
	if o.DaemonSocketDir != "" {
		pluginType = netconf.ShimType
	}
	plugin := netconf.NetConf{
		NetConf:                types.NetConf{Type: pluginType, Capabilities: p.capabilities()},
		Kubeconfig:             o.Kubeconfig,
		ClusterNetwork:         filepath.Join(o.HostConfDir, filepath.Base(primaryFile)),
		ConfDir:                o.ConfDir,
		CNIDir:                 o.CNIDir,
		BinDir:                 o.BinDir,
		LogFile:                o.LogFile,
		LogLevel:               o.LogLevel,
		NamespaceIsolation:     o.NamespaceIsolation,
		GlobalNamespaces:       o.GlobalNamespaces,
		ReadinessIndicatorFile: o.ReadinessIndicatorFile,
		DaemonSocketDir:        o.DaemonSocketDir,
	}
	if err := check(plugin, o.Name, p.cniVersion); err != nil {
		return nil, fmt.Errorf("braid config for %s: %w", primaryFile, err)
	}
	list := conflist{CNIVersion: p.cniVersion, Name: o.Name, Plugins: []netconf.NetConf{plugin}}
	data, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode braid config for %s: %w", primaryFile, err)
	}
	return append(data, '\n'), nil
}

// check parses the plugin entry as braid will see it: with the list's name
// and cniVersion injected by the runtime.
func check(plugin netconf.NetConf, name, cniVersion string) error {
	plugin.Name, plugin.CNIVersion = name, cniVersion
	raw, err := json.Marshal(plugin)
	if err != nil {
		return err
	}
	_, err = netconf.Parse(raw)
	return err
}
