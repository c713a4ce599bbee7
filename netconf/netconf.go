// Package netconf is braid's own plugin configuration: the file the
// runtime hands to braid on stdin, parsed here and written by braid's
// installer from a NetConf. Its keys are spelled as Multus spells them so
// that an existing Multus thin-plugin config works unchanged.
package netconf

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/braid-cni/braid/wire"
)

// Defaults filled in by Parse when the key is absent.
const (
	DefaultConfDir         = "/etc/cni/multus/net.d"
	DefaultCNIDir          = "/var/lib/cni/braid"
	DefaultBinDir          = "/opt/cni/bin"
	DefaultMultusNamespace = "kube-system"
	DefaultSystemNamespace = "kube-system"
	// DefaultMaxNetworksPerPod bounds the secondary networks of one pod
	// (inline delegates, defaultNetworks and the annotation's together).
	DefaultMaxNetworksPerPod = 32
)

// Bounds of one call, the same in the thin plugin and in braidd.
const (
	// VerbTimeout is the deadline of one verb (the protocol's: braid-shim
	// links no netconf).
	VerbTimeout = wire.VerbTimeout
	// ReadinessTimeout bounds the wait for readinessindicatorfile.
	ReadinessTimeout = 45 * time.Second
)

// NetConf is braid's plugin configuration.
//
// Marshalled, the fields' order is the keys' order, and braid's installer
// writes a NetConf into every node's CNI config directory, where it is
// compared byte for byte to decide whether to rewrite it (and so make the
// runtime reload it). The keys the installer writes come first, in the
// order it has always written them: moving one of them changes every
// node's file (install.TestConfigBytes pins those bytes).
type NetConf struct {
	types.NetConf

	Kubeconfig string `json:"kubeconfig,omitempty"`
	// ClusterNetwork names the pod's primary network: a NAD name, a
	// namespace/name, a config name in ConfDir or a path to a config file.
	ClusterNetwork  string   `json:"clusterNetwork,omitempty"`
	DefaultNetworks []string `json:"defaultNetworks,omitempty"`
	// Delegates is the legacy way to give the cluster network inline: the
	// first entry is the cluster network config.
	Delegates []json.RawMessage `json:"delegates,omitempty"`
	// ConfDir holds delegate configs named by file. Default DefaultConfDir.
	ConfDir string `json:"confDir,omitempty"`
	// CNIDir holds braid's journal and libcni's result cache. Default
	// DefaultCNIDir.
	CNIDir string `json:"cniDir,omitempty"`
	// BinDir is one directory or a ':'-separated list of them where
	// delegate plugins are looked up. Default DefaultBinDir.
	BinDir  string `json:"binDir,omitempty"`
	LogFile string `json:"logFile,omitempty"`
	// LogLevel is "", debug, verbose, info, warn, error or panic. Parse
	// stores it in lower case.
	LogLevel string `json:"logLevel,omitempty"`
	// LogToStderr defaults to true, as in Multus; see StderrLogging.
	LogToStderr     *bool  `json:"logToStderr,omitempty"`
	MultusNamespace string `json:"multusNamespace,omitempty"`
	// SystemNamespaces is ["kube-system"] when the key is absent; an
	// explicit empty list stays empty.
	SystemNamespaces   []string `json:"systemNamespaces,omitempty"`
	NamespaceIsolation bool     `json:"namespaceIsolation,omitempty"`
	// GlobalNamespaces is a comma-separated list; see GlobalNamespaceList.
	GlobalNamespaces       string `json:"globalNamespaces,omitempty"`
	ReadinessIndicatorFile string `json:"readinessindicatorfile,omitempty"`
	// RuntimeConfig holds the runtime's capability arguments (portMappings,
	// bandwidth, ...), passed through to delegates.
	RuntimeConfig map[string]any `json:"runtimeConfig,omitempty"`
	// DaemonSocketDir turns braid into a shim (thick mode): every verb is
	// forwarded to the braidd daemon listening on braid.sock in this
	// directory. Empty: braid runs the verbs itself (thin mode).
	DaemonSocketDir string `json:"daemonSocketDir,omitempty"`
	// PodResourcesSocket is the kubelet's pod-resources socket, asked for
	// the devices of device-backed networks. Default
	// /var/lib/kubelet/pod-resources/kubelet.sock.
	PodResourcesSocket string `json:"podResourcesSocket,omitempty"`
	// DeviceCheckpoint is the kubelet device manager's checkpoint, read
	// when the pod-resources socket does not answer. Default
	// /var/lib/kubelet/device-plugins/kubelet_internal_checkpoint.
	DeviceCheckpoint string `json:"deviceCheckpoint,omitempty"`
	// DeviceInfoDir holds the NPWG device-info files. Default
	// /var/run/k8s.cni.cncf.io/devinfo.
	DeviceInfoDir string `json:"deviceInfoDir,omitempty"`
	// MaxNetworksPerPod bounds the secondary networks of one pod; more is
	// refused before anything is created. Default DefaultMaxNetworksPerPod.
	MaxNetworksPerPod int `json:"maxNetworksPerPod,omitempty"`
}

// MarshalJSON encodes every key that is set, and only those: this is the
// config as braid's installer writes it. Without it the MarshalJSON that
// *types.NetConf promotes would encode only the embedded CNI fields.
func (c NetConf) MarshalJSON() ([]byte, error) {
	// plain has no methods of its own, and a value (not a pointer) does not
	// pick up the embedded pointer-receiver MarshalJSON either.
	type plain NetConf
	return json.Marshal(struct {
		plain
		// Shallower than the embedded types.NetConf's ipam and dns, which
		// are structs that encode as {} when unset, these hide them.
		IPAM types.IPAM `json:"ipam,omitzero"`
		DNS  types.DNS  `json:"dns,omitzero"`
	}{plain: plain(c), IPAM: c.IPAM, DNS: c.DNS})
}

// Parse decodes data, fills in defaults and validates the result. Every
// error is a *types.Error with code types.ErrInvalidNetworkConfig whose
// message names the offending key.
func Parse(data []byte) (*NetConf, error) {
	var c NetConf
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, decodeError(err)
	}
	c.setDefaults()
	if err := c.validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

func (c *NetConf) setDefaults() {
	if c.ConfDir == "" {
		c.ConfDir = DefaultConfDir
	}
	if c.CNIDir == "" {
		c.CNIDir = DefaultCNIDir
	}
	if c.BinDir == "" {
		c.BinDir = DefaultBinDir
	}
	if c.MultusNamespace == "" {
		c.MultusNamespace = DefaultMultusNamespace
	}
	// An absent key decodes to nil, an explicit [] to an empty slice.
	if c.SystemNamespaces == nil {
		c.SystemNamespaces = []string{DefaultSystemNamespace}
	}
	c.LogLevel = strings.ToLower(c.LogLevel)
	if c.MaxNetworksPerPod == 0 {
		c.MaxNetworksPerPod = DefaultMaxNetworksPerPod
	}
}

// GlobalNamespaceList returns the namespaces in GlobalNamespaces, trimmed,
// without empty entries.
func (c *NetConf) GlobalNamespaceList() []string {
	return splitNonEmpty(c.GlobalNamespaces, ",")
}

// BinDirs returns the directories in BinDir, without empty entries.
func (c *NetConf) BinDirs() []string {
	return splitNonEmpty(c.BinDir, ":")
}

// NetworkLimit is MaxNetworksPerPod, or its default where the config was
// not parsed (a NetConf built in code).
func (c *NetConf) NetworkLimit() int {
	if c.MaxNetworksPerPod <= 0 {
		return DefaultMaxNetworksPerPod
	}
	return c.MaxNetworksPerPod
}

// IsSystemNamespace reports whether ns is one of SystemNamespaces.
func (c *NetConf) IsSystemNamespace(ns string) bool {
	return slices.Contains(c.SystemNamespaces, ns)
}

// NamespaceAllowed reports whether a pod in podNS may use a network
// attachment defined in netNS. Without NamespaceIsolation every namespace
// is allowed; with it only the pod's own namespace and the global ones.
// As in Multus, "default" is global while globalNamespaces is unset.
func (c *NetConf) NamespaceAllowed(podNS, netNS string) bool {
	if !c.NamespaceIsolation || netNS == podNS {
		return true
	}
	global := c.GlobalNamespaceList()
	if len(global) == 0 {
		global = []string{"default"}
	}
	return slices.Contains(global, netNS)
}

func splitNonEmpty(s, sep string) []string {
	var out []string
	for _, part := range strings.Split(s, sep) {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

// decodeError turns a json.Unmarshal error into a code 7 error that names
// the key whose value has the wrong type.
func decodeError(err error) error {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr) && typeErr.Field == "":
		return invalid(fmt.Sprintf("want a JSON object, got %s", typeErr.Value))
	case errors.As(err, &typeErr):
		// Keys of the embedded types.NetConf come back as
		// "NetConf.cniVersion"; the user wrote "cniVersion".
		key := strings.TrimPrefix(typeErr.Field, "NetConf.")
		return invalidKey(key, "want %s, got %s", jsonKind(typeErr.Type), typeErr.Value)
	case errors.As(err, &syntaxErr):
		return invalid(fmt.Sprintf("malformed JSON at byte %d: %v", syntaxErr.Offset, err))
	default:
		return invalid(fmt.Sprintf("decode JSON: %v", err))
	}
}

// jsonKind names the JSON value that decodes into t.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "bool"
	case reflect.String:
		return "string"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Map, reflect.Struct:
		return "object"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return "number"
	default:
		return t.String()
	}
}

func invalid(msg string) *types.Error {
	return types.NewError(types.ErrInvalidNetworkConfig, "invalid braid config: "+msg, "")
}

func invalidKey(key, format string, args ...any) *types.Error {
	return invalid(fmt.Sprintf("key %q: ", key) + fmt.Sprintf(format, args...))
}

// ConfigExtensions are the extensions of the config files libcni and the
// runtimes read from a CNI config directory.
func ConfigExtensions() []string { return []string{".conf", ".conflist", ".json"} }

// IsConfigFile reports whether name is a config file a runtime would read:
// one of ConfigExtensions, and not a hidden file (the temp files of atomic
// writes are).
func IsConfigFile(name string) bool {
	base := filepath.Base(name)
	return !strings.HasPrefix(base, ".") && slices.Contains(ConfigExtensions(), filepath.Ext(base))
}

// The plugin types braid is installed under: the plugin itself, and the
// shim that forwards to braidd in thick mode.
const (
	Type     = "braid"
	ShimType = "braid-shim"
)

// IsBraid reports whether pluginType is one of braid's own: a config of
// that type must never be taken as a network braid attaches, or braid
// would call itself.
func IsBraid(pluginType string) bool {
	return pluginType == Type || pluginType == ShimType
}

// IsOwnType reports whether pluginType runs braid on this node: one of
// braid's own types, or the type braid's config was installed under (an
// operator may have installed the binary under another name).
func (c *NetConf) IsOwnType(pluginType string) bool {
	return IsBraid(pluginType) || (c.Type != "" && pluginType == c.Type)
}
