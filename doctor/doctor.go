// Package doctor checks a node's braid installation the way the runtime and
// braid will use it: which CNI config wins, whether braid's config parses,
// the binaries it calls, its kubeconfig, the daemon socket in thick mode,
// and journal entries whose network namespace is gone. Each check returns a
// Result; Run can release stale journal entries through braid's own DEL.
package doctor

import (
	"context"
	"time"

	"github.com/containernetworking/cni/pkg/invoke"

	"github.com/braid-cni/braid/attacher"
	"github.com/braid-cni/braid/netconf"
	"github.com/braid-cni/braid/plan"
)

// Status is a check's verdict.
type Status string

// The verdicts, from good to bad.
const (
	OK   Status = "ok"
	Warn Status = "warn"
	Fail Status = "fail"
)

// Result is one check's finding: what was checked, the verdict, what was
// found and, when not ok, what to do about it.
type Result struct {
	Name   string `json:"name"`
	Status Status `json:"status"`
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
}

// Options say where to look and what to do.
type Options struct {
	// CNIConfDir is the runtime's CNI config directory.
	CNIConfDir string
	// CNIBinDir is the runtime's CNI binary directory, where braid itself
	// is found. Delegates are looked up in braid's config's binDir.
	CNIBinDir string
	// Fix releases stale journal entries through Del.
	Fix bool
	// Del runs braid's DEL for one container through the core
	// (attacher.Attacher.Del) with braid's config; needed with Fix.
	Del func(ctx context.Context, conf *netconf.NetConf, req attacher.Request) error
	// Pods reads pods for the hot-plug check; nil: clients from braid's
	// kubeconfig.
	Pods plan.PodGetter
	// Exec runs plugin binaries for VERSION; nil runs them for real.
	Exec invoke.Exec
	// Now is the clock for token expiry; nil is time.Now.
	Now func() time.Time
	// Timeout bounds each network call (API server, daemon). Default 10s.
	Timeout time.Duration
	// HostView reports whether this process sees mounts and processes as
	// the runtime does: nil, or why not. Journal entries are judged stale
	// only when it does. nil HostView asks /proc (hostView).
	HostView func() error
}

func (o Options) now() time.Time {
	if o.Now == nil {
		return time.Now()
	}
	return o.Now()
}

func (o Options) hostView() error {
	if o.HostView == nil {
		return hostView("/proc")
	}
	return o.HostView()
}

func (o Options) timeout() time.Duration {
	if o.Timeout <= 0 {
		return 10 * time.Second
	}
	return o.Timeout
}

// Run runs every check in order. The checks after the config's need a
// braid config that parses; without one Run stops there.
func Run(ctx context.Context, o Options) []Result {
	found, res := CheckConfDir(o.CNIConfDir)
	results := []Result{res}
	if found == nil {
		return results
	}
	conf, res := CheckConfig(found)
	results = append(results, res)
	if conf == nil {
		return results
	}
	results = append(results, CheckClusterNetwork(ctx, conf, o))
	results = append(results, CheckBinaries(ctx, conf, o)...)
	results = append(results, CheckKubeconfig(ctx, conf, o))
	if conf.DaemonSocketDir != "" {
		results = append(results, CheckDaemon(ctx, conf.DaemonSocketDir, o.timeout()))
	}
	results = append(results, CheckDevices(ctx, conf, o))
	results = append(results, CheckJournal(ctx, conf, o))
	results = append(results, CheckHotplug(ctx, conf, o))
	return results
}

// Failed reports whether any result is a failure.
func Failed(results []Result) bool {
	for _, r := range results {
		if r.Status == Fail {
			return true
		}
	}
	return false
}

func ok(name, detail string) Result { return Result{Name: name, Status: OK, Detail: detail} }

func warn(name, detail, fix string) Result {
	return Result{Name: name, Status: Warn, Detail: detail, Fix: fix}
}

func fail(name, detail, fix string) Result {
	return Result{Name: name, Status: Fail, Detail: detail, Fix: fix}
}
