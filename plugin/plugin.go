package plugin

import (
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	k8stypes "k8s.io/apimachinery/pkg/types"

	"github.com/braid-cni/braid/attach"
	"github.com/braid-cni/braid/caller"
	"github.com/braid-cni/braid/delegate"
	"github.com/braid-cni/braid/devices"
	"github.com/braid-cni/braid/gateway"
	"github.com/braid-cni/braid/journal"
	"github.com/braid-cni/braid/kube"
	"github.com/braid-cni/braid/lock"
	"github.com/braid-cni/braid/nad"
	"github.com/braid-cni/braid/netconf"
	"github.com/braid-cni/braid/plan"
	"github.com/braid-cni/braid/status"
)

// Plugin runs braid's verbs: as the thin CNI plugin (its config on stdin
// is the runtime's, trusted), and in braidd for the shim's calls (Settings
// set: braidd's own config file is the only source of braid's settings).
type Plugin struct {
	Stdout io.Writer
	Stderr io.Writer
	// Getenv reads the process environment: a braid started under
	// braid's own mark (package caller) refuses to run. nil: os.Getenv.
	Getenv func(string) string
	// Exec runs delegate binaries; nil runs them for real.
	Exec invoke.Exec
	// Timeout is the deadline of one verb.
	Timeout time.Duration
	// ReadinessTimeout bounds the wait for readinessindicatorfile.
	ReadinessTimeout time.Duration
	// Hostname names this node in events.
	Hostname string
	// Settings, when set, gives braid's settings for each call (braidd:
	// its config file, with the cluster network autoconfig wraps now): a
	// call's config then gives only the runtime's keys (cniVersion, name,
	// type, capabilities and their values; netconf.NetConf.ForCaller), and
	// nothing is forwarded. nil: the thin plugin.
	Settings func() (*netconf.NetConf, error)
	// Log, when set, is where every call logs (braidd's own log); nil:
	// where the call's config says.
	Log *slog.Logger
	// Connect gives a call its API access. nil: clients from the config's
	// kubeconfig, built per call (the thin plugin); the daemon passes one
	// backed by its informers.
	Connect func(conf *netconf.NetConf) (*API, error)
	// WrapInvoker, when set, wraps the delegate invoker of every call (the
	// daemon measures each delegate with it).
	WrapInvoker func(attach.Invoker) attach.Invoker
	// ParallelAttach attaches the secondary networks concurrently.
	ParallelAttach bool
}

// API is what braid reads from and writes to the API server. A nil API (no
// kubeconfig) attaches the cluster network only and records nothing.
type API struct {
	Pods     plan.PodGetter
	NADs     nad.Getter
	Recorder attach.Recorder
	// Claims lists the devices of a pod's DRA ResourceClaims and writes
	// back what became of them; nil: device plugins only.
	Claims ClaimAPI
}

// ClaimAPI is what braid does with DRA ResourceClaims (devices.Claims).
type ClaimAPI interface {
	devices.Lister
	attach.ClaimWriter
}

// New returns a plugin that talks to the real process.
func New() *Plugin {
	host, _ := os.Hostname()
	return &Plugin{
		Stdout:           os.Stdout,
		Stderr:           os.Stderr,
		Getenv:           os.Getenv,
		Timeout:          2 * time.Minute,
		ReadinessTimeout: 45 * time.Second,
		Hostname:         host,
	}
}

// Funcs hands the verbs to skel. Each first refuses to run under braid's
// own mark: braid never runs as its own delegate.
func (p *Plugin) Funcs() skel.CNIFuncs {
	guard := func(verb func(*skel.CmdArgs) error) func(*skel.CmdArgs) error {
		return func(args *skel.CmdArgs) error {
			if err := caller.Check(p.Getenv); err != nil {
				return err
			}
			return verb(args)
		}
	}
	return skel.CNIFuncs{Add: guard(p.Add), Del: guard(p.Del), Check: guard(p.Check), Status: guard(p.Status), GC: guard(p.GC)}
}

// call is one verb's wiring.
type call struct {
	conf     *netconf.NetConf
	log      *slog.Logger
	closeLog func()
	builder  *plan.Builder
	attacher *attach.Attacher
	locks    lock.Dir
	req      plan.Request
}

func (p *Plugin) setup(conf *netconf.NetConf, args *skel.CmdArgs) (*call, error) {
	log, closeLog, err := p.logger(conf)
	if err != nil {
		return nil, err
	}
	c := &call{conf: conf, log: log, closeLog: closeLog, locks: lock.ForCNIDir(conf.CNIDir)}
	k8sArgs, err := netconf.ParseArgs(args.Args)
	if err != nil {
		closeLog()
		return nil, err
	}
	resolver := &nad.Resolver{ConfDir: conf.ConfDir}
	c.builder = &plan.Builder{
		Conf:       conf,
		Resolver:   resolver,
		DeviceInfo: devices.InfoDir(conf.DeviceInfoDir),
		Log:        log,
	}
	c.attacher = &attach.Attacher{
		Invoker:  delegate.NewInvoker(conf.BinDirs(), conf.CNIDir, p.Exec),
		Journal:  journal.New(conf.CNIDir),
		Routes:   gateway.ApplyToNetns,
		Parallel: p.ParallelAttach,
		Locks:    c.locks,
		Log:      log,
	}
	connect := p.Connect
	if connect == nil {
		connect = p.fromKubeconfig
	}
	api, err := connect(conf)
	if err != nil {
		closeLog()
		return nil, err
	}
	if p.WrapInvoker != nil {
		c.attacher.Invoker = p.WrapInvoker(c.attacher.Invoker)
	}
	// Devices of device-backed networks: the kubelet's, and with API
	// access those of DRA ResourceClaims.
	sources := devices.Sources{&devices.Kubelet{Socket: conf.PodResourcesSocket, Checkpoint: conf.DeviceCheckpoint}}
	if api != nil {
		c.builder.Pods = api.Pods
		resolver.NADs = api.NADs
		c.attacher.Recorder = api.Recorder
		if api.Claims != nil {
			sources = append(sources, api.Claims)
			c.attacher.Claims = api.Claims
		}
	}
	c.req = plan.Request{
		ContainerID: args.ContainerID,
		NetNS:       args.Netns,
		IfName:      args.IfName,
		Args:        splitArgs(args.Args),
		Pod: plan.PodRef{
			Namespace: string(k8sArgs.K8S_POD_NAMESPACE),
			Name:      string(k8sArgs.K8S_POD_NAME),
			UID:       k8stypes.UID(k8sArgs.K8S_POD_UID),
		},
		RuntimeConfig: conf.RuntimeConfig,
	}
	c.builder.Devices = sources
	return c, nil
}

// fromKubeconfig builds clients from the config's kubeconfig; none without it.
func (p *Plugin) fromKubeconfig(conf *netconf.NetConf) (*API, error) {
	if conf.Kubeconfig == "" {
		return nil, nil
	}
	clients, err := kube.FromKubeconfig(conf.Kubeconfig, p.Timeout)
	if err != nil {
		return nil, types.NewError(types.ErrTryAgainLater, "kubeconfig "+conf.Kubeconfig, err.Error())
	}
	return &API{
		Pods:     clients,
		NADs:     clients,
		Recorder: &status.Writer{Client: clients.Core, Component: "braid", Node: p.Hostname},
		Claims:   &devices.Claims{Client: clients.Core},
	}, nil
}

// splitArgs turns CNI_ARGS into pairs to pass on unchanged.
func splitArgs(s string) [][2]string {
	var out [][2]string
	for _, kv := range strings.Split(s, ";") {
		if kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		out = append(out, [2]string{k, v})
	}
	return out
}
