package install

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/containernetworking/cni/libcni"

	"github.com/braid-cni/braid/netconf"
)

// NoPrimaryError says that a config directory holds no usable primary CNI
// config yet; the installer waits and looks again.
type NoPrimaryError struct {
	Dir string
	// Skipped joins why each candidate file was passed over.
	Skipped error
}

func (e *NoPrimaryError) Error() string {
	msg := "no primary CNI config in " + e.Dir
	if e.Skipped != nil {
		msg += " (skipped: " + e.Skipped.Error() + ")"
	}
	return msg
}

// BrokenPrimaryError says that the primary config braid's file wraps is
// still there and still comes first, but does not parse or cannot be read:
// most likely its installer is rewriting it in place. The caller keeps
// braid's file as it is and looks again later; Path names the file for the
// log.
type BrokenPrimaryError struct {
	Path string
	Err  error
}

func (e *BrokenPrimaryError) Error() string {
	return "primary CNI config braid wraps is unusable: " + e.Err.Error()
}

func (e *BrokenPrimaryError) Unwrap() error { return e.Err }

// braidConfigError says that a candidate is a braid config itself.
type braidConfigError struct{ path string }

func (e *braidConfigError) Error() string { return e.path + " is a braid config" }

// primaryConf is what braid takes from the primary config.
type primaryConf struct {
	name, cniVersion string
	plugins          []*libcni.PluginConfig
}

// FindPrimary returns the primary CNI config for braid's file own in
// confDir: the alphabetically first *.conf, *.conflist or *.json file,
// other than own, that parses as a CNI config and is not a braid config.
// Without one it returns a *NoPrimaryError.
//
// Files that do not parse are passed over, as the runtimes pass them over,
// with one exception: the file own wraps now (its clusterNetwork, by base
// name, since braid's file names it as the host sees it). While that file
// comes first and is there but does not parse, it is most likely being
// rewritten in place (truncated, then written) by a primary plugin's
// installer, not gone; passing over it would remove braid's file or switch
// the cluster network to the next config for that moment. FindPrimary
// returns a *BrokenPrimaryError for it instead, and the caller keeps its
// file. Only a primary that is removed, or that became a braid config,
// hands over to the next one; a valid config that sorts before it takes
// over as always. A broken file braid does not wrap (a new config still
// being written, or a stray one) is passed over, so it can neither block
// braid nor be wrapped.
func FindPrimary(confDir, own string) (string, error) {
	files, err := libcni.ConfFiles(confDir, netconf.ConfigExtensions())
	if err != nil {
		return "", fmt.Errorf("list CNI configs in %s: %w", confDir, err)
	}
	current := wrapped(filepath.Join(confDir, own))
	var skipped []error
	// libcni lists the files in directory order, which os.ReadDir sorts.
	for _, path := range files {
		base := filepath.Base(path)
		if base == own {
			continue
		}
		err := checkFile(path)
		if err == nil {
			return path, nil
		}
		var braid *braidConfigError
		// Held only while it is there (removed since the listing, it is
		// gone) and not a braid config (which braid must never wrap).
		if base == current && !errors.Is(err, fs.ErrNotExist) && !errors.As(err, &braid) {
			return "", &BrokenPrimaryError{Path: path, Err: err}
		}
		skipped = append(skipped, err)
	}
	return "", &NoPrimaryError{Dir: confDir, Skipped: errors.Join(skipped...)}
}

// checkFile reads path and parses it as a primary config.
func checkFile(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	_, err = parsePrimary(path, data)
	return err
}

// wrapped returns the base name of the config braid's file at path wraps
// as clusterNetwork, or "" when there is no braid file there.
func wrapped(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	var list struct {
		Plugins []struct {
			Type           string `json:"type"`
			ClusterNetwork string `json:"clusterNetwork"`
		} `json:"plugins"`
	}
	if json.Unmarshal(data, &list) != nil {
		return ""
	}
	for _, p := range list.Plugins {
		if netconf.IsBraid(p.Type) && p.ClusterNetwork != "" {
			return filepath.Base(p.ClusterNetwork)
		}
	}
	return ""
}

// parsePrimary parses data the way the runtimes do, by extension: a
// .conflist as a list, anything else as a single plugin config.
func parsePrimary(path string, data []byte) (*primaryConf, error) {
	if filepath.Ext(path) == ".conflist" {
		list, err := libcni.NetworkConfFromBytes(data)
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", path, err)
		}
		// libcni accepts a list whose plugins live in a subdirectory;
		// containerd refuses a list without inline plugins.
		if len(list.Plugins) == 0 {
			return nil, fmt.Errorf("parse %s: no plugins in list", path)
		}
		return checkPrimary(path, &primaryConf{name: list.Name, cniVersion: list.CNIVersion, plugins: list.Plugins})
	}
	conf, err := libcni.NetworkPluginConfFromBytes(data)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	return checkPrimary(path, &primaryConf{name: conf.Network.Name, cniVersion: conf.Network.CNIVersion, plugins: []*libcni.PluginConfig{conf}})
}

// checkPrimary refuses a config braid cannot wrap.
func checkPrimary(path string, p *primaryConf) (*primaryConf, error) {
	if p.name == "" {
		return nil, fmt.Errorf("parse %s: no name", path)
	}
	for _, plugin := range p.plugins {
		// A braid config (another file name, an older install) as the
		// cluster network would make braid call itself for eth0.
		if netconf.IsBraid(plugin.Network.Type) {
			return nil, &braidConfigError{path: path}
		}
	}
	return p, nil
}

// capabilities returns the union of the capabilities the primary's plugins
// enable, so the runtime passes braid every runtime argument they use.
func (p *primaryConf) capabilities() map[string]bool {
	caps := map[string]bool{}
	for _, plugin := range p.plugins {
		for name, on := range plugin.Network.Capabilities {
			if on {
				caps[name] = true
			}
		}
	}
	return caps
}
