package doctor

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/containernetworking/cni/libcni"

	"github.com/braid-cni/braid/nad"
	"github.com/braid-cni/braid/netconf"
)

// Check names.
const (
	nameConfDir        = "cni-config"
	nameConfig         = "braid-config"
	nameClusterNetwork = "cluster-network"
)

// BraidFile is braid's entry in the CNI config directory.
type BraidFile struct {
	Path string
	// Plugin is braid's plugin config as the runtime hands it to braid:
	// the list's entry with the list's name and cniVersion injected.
	Plugin []byte
}

// CheckConfDir finds the file the runtime uses, as containerd and CRI-O do:
// the first of libcni.ConfFiles (sorted) that loads as a config list (a
// .conflist with plugins, or a single config with a type). It fails when
// that file is not braid's, naming it. The returned BraidFile is braid's
// config (the winner, or a later file that loses) or nil when there is none.
func CheckConfDir(dir string) (*BraidFile, Result) {
	files, err := libcni.ConfFiles(dir, netconf.ConfigExtensions())
	if err != nil {
		return nil, fail(nameConfDir, fmt.Sprintf("list %s: %v", dir, err), "check --cni-conf-dir")
	}
	var winner string
	var braid *BraidFile
	for _, path := range files {
		list, err := loadList(path)
		if err != nil {
			continue
		}
		if winner == "" {
			winner = path
		}
		if b, err := braidPlugin(path, list); err == nil && b != nil {
			braid = b
			break
		}
	}
	switch {
	case winner == "":
		return nil, fail(nameConfDir, "no usable CNI config in "+dir, "install braid (braid-install, or braidd with autoconfig)")
	case braid == nil:
		return nil, fail(nameConfDir, winner+" wins and is not braid's; no braid config in "+dir,
			"install braid's config so it sorts first (e.g. 00-braid.conflist)")
	case braid.Path != winner:
		return braid, fail(nameConfDir, winner+" wins, not braid's "+braid.Path,
			"rename braid's config to sort before "+filepath.Base(winner)+", or remove "+filepath.Base(winner))
	}
	return braid, ok(nameConfDir, braid.Path+" wins and is braid's")
}

// loadList loads a config file the way the runtimes do, by extension.
func loadList(path string) (*libcni.NetworkConfigList, error) {
	if strings.HasSuffix(path, ".conflist") {
		list, err := libcni.NetworkConfFromFile(path)
		if err != nil {
			return nil, err
		}
		if len(list.Plugins) == 0 {
			return nil, fmt.Errorf("%s: no plugins", path)
		}
		return list, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	conf, err := libcni.NetworkPluginConfFromBytes(data)
	if err != nil {
		return nil, err
	}
	if conf.Network.Type == "" {
		return nil, fmt.Errorf("%s: no type", path)
	}
	return libcni.ConfListFromConf(conf) //nolint:staticcheck // the runtimes still read .conf files this way
}

// braidPlugin returns braid's plugin of list, or nil when it has none.
func braidPlugin(path string, list *libcni.NetworkConfigList) (*BraidFile, error) {
	for _, p := range list.Plugins {
		if !netconf.IsBraid(p.Network.Type) {
			continue
		}
		// libcni injects these into every plugin of a list before calling it.
		injected, err := libcni.InjectConf(p, map[string]any{"name": list.Name, "cniVersion": list.CNIVersion})
		if err != nil {
			return nil, fmt.Errorf("inject name and cniVersion into %s: %w", path, err)
		}
		return &BraidFile{Path: path, Plugin: injected.Bytes}, nil
	}
	return nil, nil
}

// CheckConfig parses braid's plugin config as braid does.
func CheckConfig(b *BraidFile) (*netconf.NetConf, Result) {
	conf, err := netconf.Parse(b.Plugin)
	if err != nil {
		return nil, fail(nameConfig, fmt.Sprintf("%s: %v", b.Path, err), "correct the key the error names in "+b.Path)
	}
	mode := "thin"
	if conf.DaemonSocketDir != "" {
		mode = "thick, daemon socket dir " + conf.DaemonSocketDir
	}
	return conf, ok(nameConfig, fmt.Sprintf("%s parses (type %s, cniVersion %s, %s)", b.Path, conf.Type, conf.CNIVersion, mode))
}

// CheckClusterNetwork resolves the cluster network as braid does, with the
// config's kubeconfig when it has one (clusterNetwork may name a NAD).
func CheckClusterNetwork(ctx context.Context, conf *netconf.NetConf, o Options) Result {
	n, err := clusterNetwork(ctx, conf, o)
	if err != nil {
		return fail(nameClusterNetwork, err.Error(), "create the cluster network's config (or NAD) braid's clusterNetwork names, or correct clusterNetwork")
	}
	return ok(nameClusterNetwork, fmt.Sprintf("%s (%s)", n.Name, conf.ClusterNetwork))
}

// clusterNetwork resolves the config's cluster network.
func clusterNetwork(ctx context.Context, conf *netconf.NetConf, o Options) (*nad.Network, error) {
	if conf.ClusterNetwork == "" {
		if len(conf.Delegates) == 0 {
			return nil, fmt.Errorf("no clusterNetwork and no delegates")
		}
		return nad.Inline(conf.Delegates[0])
	}
	r := &nad.Resolver{ConfDir: conf.ConfDir}
	if conf.Kubeconfig != "" && !filepath.IsAbs(conf.ClusterNetwork) {
		clients, err := clientsFor(conf.Kubeconfig, o.timeout())
		if err == nil {
			r.NADs = clients
		}
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout())
	defer cancel()
	return r.ClusterNetwork(ctx, conf.MultusNamespace, conf.ClusterNetwork)
}
