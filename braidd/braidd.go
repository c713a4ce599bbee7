// Package braidd puts the node daemon together: API clients and the
// informer caches, the CNI server on the unix socket the shim talks to, the
// ops endpoints (metrics, health, readiness), the shim's installation and
// the config auto-generation. Each part lives in its own package; this one
// only wires them and runs them until the context ends.
package braidd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"runtime/debug"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/record"

	"github.com/braid-cni/braid/attacher"
	"github.com/braid-cni/braid/autoconf"
	"github.com/braid-cni/braid/braidd/hotplug"
	"github.com/braid-cni/braid/braidd/server"
	"github.com/braid-cni/braid/devices"
	"github.com/braid-cni/braid/install"
	"github.com/braid-cni/braid/journal"
	"github.com/braid-cni/braid/kube"
	"github.com/braid-cni/braid/netconf"
	"github.com/braid-cni/braid/status"
)

// Options are what the command line adds to the config file.
type Options struct {
	// Install are the binaries copied into the host's bin dir (the first
	// entry of the config's binDir) at start: braid-shim, and braid, which
	// the shim runs for a DEL the daemon does not answer.
	Install []string
	// APIServer, when set, replaces the API server URL of the in-cluster
	// config (the kubernetes service's address), for nodes where the
	// service does not reach the API server yet, such as before kube-proxy
	// runs; the service account's token and CA stay.
	APIServer string
}

// Run starts braidd and blocks until ctx ends or a part fails.
func Run(ctx context.Context, conf *netconf.DaemonConf, opts Options, log *slog.Logger) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	clients, err := connect(conf, opts, countAPICalls(reg))
	if err != nil {
		return err
	}
	cache := kube.NewCache(clients, kube.CacheOptions{NodeName: conf.NodeName})
	var plug *hotplug.Controller
	if conf.HotplugEnabled() {
		// Observing from the first list on: a change made while braidd was
		// down is applied once it is back.
		plug = &hotplug.Controller{Journal: journal.New(conf.CNIDir), Log: log}
		if err := cache.OnPods(plug.Observe, plug.Forget); err != nil {
			return err
		}
	}
	cache.Start(ctx)
	events := record.NewBroadcaster(record.WithContext(ctx))
	events.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: clients.Core.CoreV1().Events("")})
	defer events.Shutdown()
	statuses := status.NewQueue(&status.Writer{
		Client:    clients.Core,
		Component: component,
		Node:      conf.NodeName,
		Events:    events.NewRecorder(scheme.Scheme, corev1.EventSource{Component: component, Host: conf.NodeName}),
	}, log)
	registerGauges(reg, cache, journal.New(conf.CNIDir), statuses)
	// Claims are read and written live: only pods with DRA claims cost a
	// request, and braidd caches no claim or slice.
	var writer *autoconf.Writer
	if conf.Autoconfig {
		writer = autoconfWriter(conf, log)
		if conf.PodName != "" && conf.PodNamespace != "" {
			writer.Uninstalling = func(ctx context.Context) (bool, error) {
				return clients.Uninstalling(ctx, conf.PodNamespace, conf.PodName)
			}
		}
	}
	wrap, err := server.DelegateMetrics(reg)
	if err != nil {
		return err
	}
	srv := &server.Server{
		Settings: settings(conf, writer),
		// braid's core for every request: the caches for reads,
		// network-status and events recorded in the background, claims
		// read and written live, each delegate measured.
		Core: attacher.Options{
			API: &attacher.API{
				Pods:     cache,
				NADs:     cache,
				Recorder: statuses,
				Claims:   &devices.Claims{Client: clients.Core},
			},
			WrapInvoker:      wrap,
			Parallel:         conf.ParallelAttach,
			ReadinessTimeout: netconf.ReadinessTimeout,
			Log:              log,
		},
		Timeout:       netconf.VerbTimeout,
		MaxConcurrent: conf.MaxConcurrent,
		Unsynced:      cache.Unsynced,
		Log:           log,
		Registry:      reg,
		EnablePprof:   conf.EnablePprof,
	}
	for _, bin := range opts.Install {
		dir := conf.BinDirs()[0]
		if err := install.CopyBinary(bin, dir); err != nil {
			return fmt.Errorf("install %s into %s: %w", bin, dir, err)
		}
		log.Info("installed", "binary", bin, "dir", dir)
	}
	go releaseListMemory(ctx, cache, log)
	parts := []func(context.Context) error{
		func(ctx context.Context) error { return srv.Serve(ctx, conf.SocketDir) },
		func(ctx context.Context) error { statuses.Run(ctx, statusWorkers, statusDrain); return nil },
	}
	if conf.MetricsAddr != "" {
		parts = append(parts, func(ctx context.Context) error { return serveOps(ctx, conf.MetricsAddr, srv.OpsHandler()) })
	}
	if writer != nil {
		parts = append(parts, writer.Run)
	}
	if plug != nil {
		plug.Sync = srv.Sync
		parts = append(parts, func(ctx context.Context) error { plug.Run(ctx, hotplugWorkers); return nil })
	}
	return runAll(ctx, parts)
}

// connect uses the kubeconfig when set, else the pod's service account.
// wrap, when set, wraps the clients' transport (the API call metrics). The
// clients have no timeout of their own: the informers' watches are meant to
// stay open for minutes, and every other call carries a deadline.
func connect(conf *netconf.DaemonConf, opts Options, wrap func(http.RoundTripper) http.RoundTripper) (*kube.Clients, error) {
	var cfg *rest.Config
	var err error
	if conf.Kubeconfig != "" {
		if opts.APIServer != "" {
			return nil, fmt.Errorf("API server %s: only for the in-cluster config, and the config names the kubeconfig %s", opts.APIServer, conf.Kubeconfig)
		}
		if cfg, err = clientcmd.BuildConfigFromFlags("", conf.Kubeconfig); err != nil {
			return nil, fmt.Errorf("load kubeconfig %s: %w", conf.Kubeconfig, err)
		}
	} else if cfg, err = inClusterConfig(rest.InClusterConfig, opts.APIServer); err != nil {
		return nil, err
	}
	if wrap != nil {
		cfg.Wrap(wrap)
	}
	return kube.FromConfig(cfg, 0)
}

// inClusterConfig loads the pod's service account config and, when server
// is set, sends it there instead of to the kubernetes service.
func inClusterConfig(load func() (*rest.Config, error), server string) (*rest.Config, error) {
	if server != "" {
		if u, err := url.Parse(server); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
			return nil, fmt.Errorf("API server %q: want http(s)://host[:port]", server)
		}
	}
	cfg, err := load()
	if err != nil {
		return nil, fmt.Errorf("no kubeconfig in the config and not in a cluster: %w", err)
	}
	if server != "" {
		cfg.Host = server
	}
	return cfg, nil
}

const (
	// component names braidd as the source of its events.
	component = "braidd"
	// statusWorkers write network-status concurrently.
	statusWorkers = 4
	// statusDrain bounds the writing of queued statuses at shutdown.
	statusDrain = 5 * time.Second
	// hotplugWorkers change running pods' networks concurrently.
	hotplugWorkers = 2
)

// settings gives each call braid's settings: braidd's config file and,
// when it names no cluster network, the primary config autoconfig wraps
// now (the same one the shim's config names; code 11 while there is none).
func settings(conf *netconf.DaemonConf, writer *autoconf.Writer) func() (*netconf.NetConf, error) {
	return func() (*netconf.NetConf, error) {
		if conf.ClusterNetwork != "" || len(conf.Delegates) > 0 || writer == nil {
			return &conf.NetConf, nil
		}
		primary := writer.Primary()
		if primary == "" {
			return nil, types.NewError(types.ErrTryAgainLater, fmt.Sprintf("braid daemon: no primary CNI config in %s yet to use as the cluster network", conf.CNIConfigDir), "")
		}
		c := conf.NetConf
		c.ClusterNetwork = primary
		return &c, nil
	}
}

// autoconfWriter writes the shim's config: braid forwarding to this daemon,
// with the paths the shim needs to DEL on its own when the daemon is down.
func autoconfWriter(conf *netconf.DaemonConf, log *slog.Logger) *autoconf.Writer {
	return &autoconf.Writer{
		Dir: conf.CNIConfigDir,
		Own: conf.ConfigName,
		Options: install.Options{
			HostConfDir:     conf.CNIConfigDir,
			CNIDir:          conf.CNIDir,
			BinDir:          conf.BinDir,
			ConfDir:         conf.ConfDir,
			DaemonSocketDir: conf.SocketDir,
		},
		RemoveOnExit: conf.RemoveConfigOnExit,
		Log:          log,
	}
}

// releaseListMemory hands the memory of the initial LIST back to the OS
// once the caches have synced: decoding every pod and NAD before the
// transforms trim them is the daemon's peak.
func releaseListMemory(ctx context.Context, cache *kube.Cache, log *slog.Logger) {
	if err := cache.WaitForSync(ctx); err != nil {
		return
	}
	debug.FreeOSMemory()
	s := cache.Stats()
	log.Info("caches synced", "pods", s.Pods, "nads", s.NADs)
}

// serveOps serves the ops handler on addr until ctx ends.
func serveOps(ctx context.Context, addr string, h http.Handler) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics address %s: %w", addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve metrics on %s: %w", addr, err)
	}
	return nil
}

// runAll runs every part until ctx ends; the first to fail stops the rest.
func runAll(ctx context.Context, parts []func(context.Context) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, len(parts))
	for _, part := range parts {
		go func() { errs <- part(ctx) }()
	}
	var first error
	for range parts {
		if err := <-errs; err != nil && first == nil {
			first = err
			cancel()
		}
	}
	return first
}
