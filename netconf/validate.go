package netconf

import (
	"bytes"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// supportedVersions lists the CNI spec versions braid accepts, oldest
// first. 0.1.0 and 0.2.0 predate the result format braid merges.
func supportedVersions() []string {
	return []string{"0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"}
}

// logLevels lists the accepted logLevel values: Multus's four plus info
// and warn.
func logLevels() []string {
	return []string{"debug", "verbose", "info", "warn", "error", "panic"}
}

// validate checks a decoded config whose defaults are filled in.
func (c *NetConf) validate() error {
	checks := []func() error{
		c.validateVersion,
		c.requireClusterNetwork,
		c.validateClusterNetwork,
		c.validateLogLevel,
		c.validateNamespaces,
		c.validatePaths,
		c.validateLimits,
	}
	for _, check := range checks {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

func (c *NetConf) validateVersion() error {
	if c.CNIVersion == "" {
		return invalidKey("cniVersion", "missing")
	}
	if want := supportedVersions(); !slices.Contains(want, c.CNIVersion) {
		return invalidKey("cniVersion", "unsupported version %q (want %s)", c.CNIVersion, orList(want))
	}
	return nil
}

// requireClusterNetwork: the plugin needs clusterNetwork or delegates,
// unless it forwards to braidd, whose own config names the cluster network
// (as multus-shim's config needs only its socket dir).
func (c *NetConf) requireClusterNetwork() error {
	if c.ClusterNetwork == "" && len(c.Delegates) == 0 && c.DaemonSocketDir == "" {
		return invalid(`keys "clusterNetwork" and "delegates": one of them is required`)
	}
	return nil
}

func (c *NetConf) validateClusterNetwork() error {
	for i, d := range c.Delegates {
		if !bytes.HasPrefix(bytes.TrimSpace(d), []byte("{")) {
			return invalidKey("delegates", "entry %d is not a JSON object", i)
		}
	}
	for i, n := range c.DefaultNetworks {
		if strings.TrimSpace(n) == "" {
			return invalidKey("defaultNetworks", "entry %d is empty", i)
		}
	}
	return nil
}

func (c *NetConf) validateLogLevel() error {
	if want := logLevels(); c.LogLevel != "" && !slices.Contains(want, c.LogLevel) {
		return invalidKey("logLevel", "unknown level %q (want %s)", c.LogLevel, orList(want))
	}
	return nil
}

func (c *NetConf) validateNamespaces() error {
	if err := checkLabel(c.MultusNamespace); err != nil {
		return invalidKey("multusNamespace", "%v", err)
	}
	for i, ns := range c.SystemNamespaces {
		if err := checkLabel(ns); err != nil {
			return invalidKey("systemNamespaces", "entry %d: %v", i, err)
		}
	}
	for _, ns := range c.GlobalNamespaceList() {
		if err := checkLabel(ns); err != nil {
			return invalidKey("globalNamespaces", "%v", err)
		}
	}
	return nil
}

// checkLabel returns an error unless ns is a valid namespace name.
func checkLabel(ns string) error {
	if msgs := validation.IsDNS1123Label(ns); len(msgs) > 0 {
		return fmt.Errorf("%q is not a valid namespace name: %s", ns, strings.Join(msgs, "; "))
	}
	return nil
}

func (c *NetConf) validatePaths() error {
	type keyValue struct{ key, value string }
	paths := []keyValue{{"confDir", c.ConfDir}, {"cniDir", c.CNIDir}}
	for _, dir := range strings.Split(c.BinDir, ":") {
		paths = append(paths, keyValue{"binDir", dir})
	}
	if c.ReadinessIndicatorFile != "" {
		paths = append(paths, keyValue{"readinessindicatorfile", c.ReadinessIndicatorFile})
	}
	for _, opt := range []keyValue{
		{"daemonSocketDir", c.DaemonSocketDir},
		{"podResourcesSocket", c.PodResourcesSocket},
		{"deviceCheckpoint", c.DeviceCheckpoint},
		{"deviceInfoDir", c.DeviceInfoDir},
	} {
		if opt.value != "" {
			paths = append(paths, opt)
		}
	}
	for _, p := range paths {
		if !filepath.IsAbs(p.value) {
			return invalidKey(p.key, "%q is not an absolute path", p.value)
		}
	}
	return nil
}

func (c *NetConf) validateLimits() error {
	if c.MaxNetworksPerPod < 1 {
		return invalidKey("maxNetworksPerPod", "%d: want at least 1", c.MaxNetworksPerPod)
	}
	return nil
}

// orList formats ["a", "b", "c"] as "a, b or c".
func orList(items []string) string {
	if len(items) < 2 {
		return strings.Join(items, "")
	}
	return strings.Join(items[:len(items)-1], ", ") + " or " + items[len(items)-1]
}
