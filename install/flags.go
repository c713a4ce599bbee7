package install

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/braid-cni/braid/netconf"
)

// Settings are the installer's command line: where it reads and writes in
// its container, and the Options it writes into braid's config.
type Settings struct {
	// BraidBinary is the plugin in the installer's image.
	BraidBinary string
	// CNIBinDir and CNIConfDir are the host's CNI bin and config
	// directories as mounted in the container.
	CNIBinDir, CNIConfDir string
	// SADir holds the service account's token and ca.crt.
	SADir string
	// APIServer is the URL written into braid's kubeconfig.
	APIServer string
	// OwnConfigName is braid's config file name in CNIConfDir. It must
	// sort before the primary's for the runtime to call braid.
	OwnConfigName string
	CleanupOnExit bool
	Interval      time.Duration
	// Options.HostConfDir is CNIConfDir as the host sees it and
	// Options.Kubeconfig, below it, is where braid reads its kubeconfig.
	Options Options
}

// ParseFlags parses the installer's flags in args. getenv supplies
// KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT for the default
// --api-server. Usage and errors go to output.
func ParseFlags(name string, args []string, getenv func(string) string, output io.Writer) (Settings, error) {
	var s Settings
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(output)
	fs.StringVar(&s.BraidBinary, "braid-binary", "/usr/src/braid/bin/braid", "braid plugin binary to install")
	fs.StringVar(&s.CNIBinDir, "cni-bin-dir", "/host/opt/cni/bin", "host's CNI bin directory, as mounted in this container")
	fs.StringVar(&s.CNIConfDir, "cni-conf-dir", "/host/etc/cni/net.d", "host's CNI config directory, as mounted in this container")
	fs.StringVar(&s.Options.HostConfDir, "host-cni-conf-dir", DefaultHostConfDir, "the CNI config directory as the host sees it")
	fs.StringVar(&s.Options.Kubeconfig, "host-kubeconfig", DefaultHostConfDir+"/braid.d/braid.kubeconfig", "braid's kubeconfig as the host sees it; must be below --host-cni-conf-dir")
	fs.StringVar(&s.SADir, "sa-dir", DefaultServiceAccountDir, "directory holding the service account's token and ca.crt")
	fs.StringVar(&s.APIServer, "api-server", defaultAPIServer(getenv), "API server URL for braid's kubeconfig")
	fs.StringVar(&s.OwnConfigName, "own-config-name", "00-braid.conflist", "braid's config file name; must sort before the primary config")
	fs.BoolVar(&s.CleanupOnExit, "cleanup-on-exit", true, "remove braid's config on SIGTERM or SIGINT")
	fs.DurationVar(&s.Interval, "interval", time.Minute, "how often to refresh the kubeconfig and look for a new primary config")
	optionFlags(fs, &s.Options)
	if err := fs.Parse(args); err != nil {
		return Settings{}, err
	}
	if fs.NArg() > 0 {
		return Settings{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if err := s.validate(); err != nil {
		return Settings{}, err
	}
	return s, nil
}

// optionFlags registers the flags for the keys of braid's config.
func optionFlags(fs *flag.FlagSet, o *Options) {
	fs.StringVar(&o.Name, "name", DefaultName, "network name of braid's conflist")
	fs.StringVar(&o.ConfDir, "conf-dir", netconf.DefaultConfDir, "braid's confDir, as the host sees it")
	fs.StringVar(&o.CNIDir, "cni-dir", netconf.DefaultCNIDir, "braid's cniDir, as the host sees it")
	fs.StringVar(&o.BinDir, "bin-dir", netconf.DefaultBinDir, "braid's binDir (':'-separated), as the host sees it")
	fs.StringVar(&o.LogFile, "log-file", "", "braid's logFile")
	fs.StringVar(&o.LogLevel, "log-level", "", "braid's logLevel")
	fs.BoolVar(&o.NamespaceIsolation, "namespace-isolation", false, "braid's namespaceIsolation")
	fs.StringVar(&o.GlobalNamespaces, "global-namespaces", "", "braid's globalNamespaces (comma-separated)")
	fs.StringVar(&o.ReadinessIndicatorFile, "readiness-indicator-file", "", "braid's readinessindicatorfile")
}

func defaultAPIServer(getenv func(string) string) string {
	host, port := getenv("KUBERNETES_SERVICE_HOST"), getenv("KUBERNETES_SERVICE_PORT")
	if host == "" || port == "" {
		return ""
	}
	// JoinHostPort brackets an IPv6 service address.
	return "https://" + net.JoinHostPort(host, port)
}

func (s Settings) validate() error {
	if s.APIServer == "" {
		return errors.New("--api-server is empty and KUBERNETES_SERVICE_HOST/PORT are not set")
	}
	if u, err := url.Parse(s.APIServer); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return fmt.Errorf("--api-server %q: want http(s)://host[:port]", s.APIServer)
	}
	if s.Interval <= 0 {
		return fmt.Errorf("--interval %s: want a positive duration", s.Interval)
	}
	if !filepath.IsAbs(s.Options.HostConfDir) {
		return fmt.Errorf("--host-cni-conf-dir %q: want an absolute path", s.Options.HostConfDir)
	}
	if s.OwnConfigName != filepath.Base(s.OwnConfigName) || filepath.Ext(s.OwnConfigName) != ".conflist" {
		return fmt.Errorf("--own-config-name %q: want a file name ending in .conflist", s.OwnConfigName)
	}
	if _, err := s.KubeconfigPath(); err != nil {
		return err
	}
	return nil
}

// KubeconfigPath is where the installer writes Options.Kubeconfig: the
// same file below CNIConfDir, which is Options.HostConfDir mounted.
func (s Settings) KubeconfigPath() (string, error) {
	rel, err := filepath.Rel(s.Options.HostConfDir, s.Options.Kubeconfig)
	if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", fmt.Errorf("--host-kubeconfig %q is not below --host-cni-conf-dir %q, the only host directory the installer writes", s.Options.Kubeconfig, s.Options.HostConfDir)
	}
	return filepath.Join(s.CNIConfDir, rel), nil
}
