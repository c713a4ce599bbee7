package netconf

import (
	"encoding/json"
	"path/filepath"
	"runtime"

	"github.com/braid-cni/braid/wire"
)

// Daemon defaults, filled in by ParseDaemon.
const (
	// DefaultSocketDir is the protocol's (braid-shim links no netconf).
	DefaultSocketDir    = wire.DefaultSocketDir
	DefaultCNIConfigDir = "/etc/cni/net.d"
	DefaultConfigName   = "00-braid.conflist"
)

// DefaultMaxConcurrent is maxConcurrent when the config does not set it:
// four CNI requests in flight per CPU.
func DefaultMaxConcurrent() int { return 4 * runtime.NumCPU() }

// DaemonConf is braidd's configuration: every plugin key (kubeconfig, log
// settings, and the paths written into the shim's config by autoconfig)
// plus the daemon's own.
type DaemonConf struct {
	NetConf
	// SocketDir holds braid.sock, the shim's way in. Default DefaultSocketDir.
	SocketDir string `json:"socketDir,omitempty"`
	// NodeName selects the pods to cache: default $NODE_NAME, else the hostname.
	NodeName string `json:"nodeName,omitempty"`
	// PodNamespace and PodName are braidd's own pod, from $POD_NAMESPACE
	// and $POD_NAME (the DaemonSet's downward API); empty outside a pod.
	// removeConfigOnExit asks its DaemonSet whether an exit is an
	// uninstall.
	PodNamespace string `json:"-"`
	PodName      string `json:"-"`
	// MetricsAddr serves /metrics, /healthz and /readyz; empty: off.
	MetricsAddr string `json:"metricsAddr,omitempty"`
	EnablePprof bool   `json:"enablePprof,omitempty"`
	// MaxConcurrent bounds in-flight CNI requests. Default 4 × CPUs.
	MaxConcurrent int `json:"maxConcurrent,omitempty"`
	// ParallelAttach attaches independent secondary networks concurrently.
	ParallelAttach bool `json:"parallelAttach,omitempty"`
	// Hotplug applies changes of a running pod's networks annotation
	// (default true); see HotplugEnabled.
	Hotplug *bool `json:"hotplug,omitempty"`
	// Autoconfig writes ConfigName in CNIConfigDir, wrapping the node's
	// primary config, and keeps it current.
	Autoconfig         bool   `json:"autoconfig,omitempty"`
	CNIConfigDir       string `json:"cniConfigDir,omitempty"`
	ConfigName         string `json:"configName,omitempty"`
	RemoveConfigOnExit bool   `json:"removeConfigOnExit,omitempty"`
}

// HotplugEnabled reports whether braidd changes running pods' networks
// when their annotation changes: yes unless "hotplug": false.
func (c *DaemonConf) HotplugEnabled() bool { return c.Hotplug == nil || *c.Hotplug }

// ParseDaemon decodes braidd's config file, the only source of braid's
// settings in thick mode: whatever the shim's config says, the daemon uses
// these (see NetConf.ForCaller). It needs no cniVersion (each caller names
// the version it wants). Without clusterNetwork or delegates it needs
// autoconfig: the cluster network is then the primary config autoconfig
// wraps. Errors are code 7 naming the key, like Parse's.
func ParseDaemon(data []byte, getenv func(string) string, hostname func() (string, error)) (*DaemonConf, error) {
	var c DaemonConf
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, decodeError(err)
	}
	c.setDefaults()
	if c.SocketDir == "" {
		c.SocketDir = DefaultSocketDir
	}
	if c.CNIConfigDir == "" {
		c.CNIConfigDir = DefaultCNIConfigDir
	}
	if c.ConfigName == "" {
		c.ConfigName = DefaultConfigName
	}
	if c.MaxConcurrent == 0 {
		c.MaxConcurrent = DefaultMaxConcurrent()
	}
	if c.NodeName == "" {
		c.NodeName = getenv("NODE_NAME")
	}
	c.PodNamespace, c.PodName = getenv("POD_NAMESPACE"), getenv("POD_NAME")
	if c.NodeName == "" {
		name, err := hostname()
		if err != nil {
			return nil, invalidKey("nodeName", "not set, no $NODE_NAME, and no hostname: %v", err)
		}
		c.NodeName = name
	}
	return &c, c.validateDaemon()
}

func (c *DaemonConf) validateDaemon() error {
	if c.DaemonSocketDir != "" {
		return invalidKey("daemonSocketDir", "not a daemon key (braidd listens in socketDir)")
	}
	if c.ClusterNetwork == "" && len(c.Delegates) == 0 && !c.Autoconfig {
		return invalid(`keys "clusterNetwork", "delegates" and "autoconfig": one of them is required`)
	}
	for _, check := range []func() error{c.validateClusterNetwork, c.validateLogLevel, c.validateNamespaces, c.validatePaths, c.validateLimits} {
		if err := check(); err != nil {
			return err
		}
	}
	for _, p := range []struct{ key, value string }{{"socketDir", c.SocketDir}, {"cniConfigDir", c.CNIConfigDir}} {
		if !filepath.IsAbs(p.value) {
			return invalidKey(p.key, "%q is not an absolute path", p.value)
		}
	}
	if filepath.Base(c.ConfigName) != c.ConfigName || filepath.Ext(c.ConfigName) != ".conflist" {
		return invalidKey("configName", "%q must be a file name ending in .conflist", c.ConfigName)
	}
	if c.MaxConcurrent < 1 {
		return invalidKey("maxConcurrent", "%d: want at least 1", c.MaxConcurrent)
	}
	return nil
}
