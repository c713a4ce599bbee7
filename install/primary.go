package install

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/containernetworking/cni/libcni"

	"github.com/braid-cni/braid/netconf"
)

// confExtensions are the config file extensions libcni and the runtimes
// read from a CNI config directory.
func confExtensions() []string {
	return []string{".conf", ".conflist", ".json"}
}

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

// primaryConf is what braid takes from the primary config.
type primaryConf struct {
	name, cniVersion string
	plugins          []*libcni.PluginConfig
}

// FindPrimary returns the alphabetically first *.conf, *.conflist or
// *.json file in confDir, other than braid's own file own, that parses as
// a CNI config. Without one it returns a *NoPrimaryError.
func FindPrimary(confDir, own string) (string, error) {
	files, err := libcni.ConfFiles(confDir, confExtensions())
	if err != nil {
		return "", fmt.Errorf("list CNI configs in %s: %w", confDir, err)
	}
	var skipped []error
	// libcni lists the files in directory order, which os.ReadDir sorts.
	for _, path := range files {
		if filepath.Base(path) == own {
			continue
		}
		data, err := os.ReadFile(path)
		if err != nil {
			skipped = append(skipped, fmt.Errorf("read %s: %w", path, err))
			continue
		}
		if _, err := parsePrimary(path, data); err != nil {
			skipped = append(skipped, err)
			continue
		}
		return path, nil
	}
	return "", &NoPrimaryError{Dir: confDir, Skipped: errors.Join(skipped...)}
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
			return nil, fmt.Errorf("%s is a braid config", path)
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
