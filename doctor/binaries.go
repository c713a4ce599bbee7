package doctor

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/containernetworking/cni/libcni"

	"github.com/braid-cni/braid/delegate"
	"github.com/braid-cni/braid/netconf"
)

// need is one use of a plugin binary: the spec version a config asks of
// it, and which config. Optional needs (delegate configs in confDir that a
// NAD may name) only warn.
type need struct {
	pluginType, cniVersion, why string
	dirs                        []string
	optional                    bool
}

// CheckBinaries checks every binary braid will call: braid itself, found
// by the runtime in CNIBinDir, the cluster network's plugins (and their
// IPAM plugins) and, as optional, those of the configs in braid's confDir,
// found in the config's binDir. Each must answer VERSION with every
// cniVersion its configs ask for among its supported versions. There is one
// result per binary.
func CheckBinaries(ctx context.Context, conf *netconf.NetConf, o Options) []Result {
	needs := []need{{pluginType: conf.Type, cniVersion: conf.CNIVersion, dirs: []string{o.CNIBinDir}, why: "braid"}}
	if n, err := clusterNetwork(ctx, conf, o); err == nil {
		if version, types, err := chainTypes(n.Config); err == nil {
			for _, t := range types {
				needs = append(needs, need{pluginType: t, cniVersion: version, dirs: conf.BinDirs(), why: "cluster network " + n.Name})
			}
		}
	}
	needs = append(needs, confDirBinaries(conf)...)
	var order []string
	byType := map[string][]need{}
	for _, n := range needs {
		if _, seen := byType[n.pluginType]; !seen {
			order = append(order, n.pluginType)
		}
		byType[n.pluginType] = append(byType[n.pluginType], n)
	}
	out := make([]Result, 0, len(order))
	for _, t := range order {
		out = append(out, checkBinary(ctx, byType[t], o))
	}
	return out
}

// confDirBinaries lists the plugins of the delegate configs in confDir.
func confDirBinaries(conf *netconf.NetConf) []need {
	files, err := libcni.ConfFiles(conf.ConfDir, netconf.ConfigExtensions())
	if err != nil {
		return nil
	}
	var out []need
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		version, types, err := chainTypes(data)
		if err != nil {
			continue
		}
		for _, t := range types {
			if netconf.IsBraid(t) {
				continue
			}
			out = append(out, need{pluginType: t, cniVersion: version, dirs: conf.BinDirs(), optional: true, why: filepath.Base(f)})
		}
	}
	return out
}

// chainTypes returns a delegate config's cniVersion and the binaries its
// chain runs: each plugin's type, followed by its IPAM plugin's type (which
// the plugin runs from the same CNI_PATH).
func chainTypes(data []byte) (string, []string, error) {
	d, err := delegate.Load(data)
	if err != nil {
		return "", nil, err
	}
	type ipam struct {
		IPAM struct {
			Type string `json:"type"`
		} `json:"ipam"`
	}
	var doc struct {
		ipam
		Plugins []ipam `json:"plugins"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return "", nil, fmt.Errorf("decode delegate config %s: %w", d.Name(), err)
	}
	if !d.IsList() {
		doc.Plugins = []ipam{doc.ipam}
	}
	var out []string
	for i, t := range d.Types() {
		out = append(out, t)
		if i < len(doc.Plugins) && doc.Plugins[i].IPAM.Type != "" {
			out = append(out, doc.Plugins[i].IPAM.Type)
		}
	}
	return d.CNIVersion(), out, nil
}

// checkBinary asks one binary for its versions and checks every need of it
// (all looked up in the first need's dirs: braid's type is its own).
func checkBinary(ctx context.Context, needs []need, o Options) Result {
	first := needs[0]
	name := "binary " + first.pluginType
	where := strings.Join(first.dirs, ":")
	var whys, required []string
	for _, n := range needs {
		whys = appendNew(whys, n.why)
		if !n.optional {
			required = appendNew(required, n.why)
		}
	}
	bad := fail
	if len(required) == 0 {
		bad = warn
	}
	info, err := libcni.NewCNIConfig(first.dirs, o.Exec).GetVersionInfo(ctx, first.pluginType)
	if err != nil {
		return bad(name, fmt.Sprintf("for %s: %v", strings.Join(whys, ", "), err),
			fmt.Sprintf("install plugin %s in %s", first.pluginType, where))
	}
	versions := info.SupportedVersions()
	list := strings.Join(versions, ", ")
	var missing []string
	bad = warn
	for _, n := range needs {
		if n.cniVersion != "" && !slices.Contains(versions, n.cniVersion) {
			missing = appendNew(missing, fmt.Sprintf("cniVersion %s (%s)", n.cniVersion, n.why))
			if !n.optional {
				bad = fail
			}
		}
	}
	if len(missing) > 0 {
		return bad(name, fmt.Sprintf("in %s supports %s, not %s", where, list, strings.Join(missing, ", ")),
			fmt.Sprintf("upgrade %s in %s, or lower the configs' cniVersion", first.pluginType, where))
	}
	return ok(name, fmt.Sprintf("for %s in %s: supports %s", strings.Join(whys, ", "), where, list))
}

func appendNew(list []string, s string) []string {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}
