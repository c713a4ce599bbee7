package attacher

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	k8stypes "k8s.io/apimachinery/pkg/types"

	"github.com/braid-cni/braid/delegate"
	"github.com/braid-cni/braid/devices"
	"github.com/braid-cni/braid/gateway"
	"github.com/braid-cni/braid/journal"
	"github.com/braid-cni/braid/lock"
	"github.com/braid-cni/braid/nad"
	"github.com/braid-cni/braid/netconf"
	"github.com/braid-cni/braid/plan"
	"github.com/braid-cni/braid/status"
)

// Invoker runs delegates (delegate.Invoker in production, a fake in tests).
type Invoker interface {
	Add(ctx context.Context, d *delegate.Delegate, rt delegate.Runtime) (types.Result, error)
	Del(ctx context.Context, d *delegate.Delegate, rt delegate.Runtime) error
	Check(ctx context.Context, d *delegate.Delegate, rt delegate.Runtime) error
	Status(ctx context.Context, d *delegate.Delegate) error
	GC(ctx context.Context, d *delegate.Delegate, valid []types.GCAttachment) error
	SetCachedResult(d *delegate.Delegate, rt delegate.Runtime, res types.Result) error
}

// Journal keeps plans by container ID (journal.Store).
type Journal interface {
	Save(p *plan.Plan) error
	// Update saves a plan whose earlier version may be kept by a crash
	// instead: the plan with its results, after its intent was saved.
	Update(p *plan.Plan) error
	Load(id string) (*plan.Plan, error)
	Remove(id string) error
	List() ([]string, error)
	// Prune deletes what a crash left of removed entries.
	Prune() ([]string, error)
}

// Recorder tells the API server what happened (status.Writer, or
// status.Queue in the daemon). Event may be called concurrently.
type Recorder interface {
	Record(ctx context.Context, pod status.PodRef, statuses []nadv1.NetworkStatus) error
	Event(ctx context.Context, pod status.PodRef, eventType, reason, message string) error
}

var (
	_ Invoker  = (*delegate.Invoker)(nil)
	_ Journal  = (*journal.Store)(nil)
	_ Recorder = (*status.Writer)(nil)
)

// Attacher is braid's core: the verbs ADD, DEL, CHECK, STATUS and GC of one
// call, each taking a context and a Request. The thin plugin (skel),
// braidd (the shim's requests) and braidctl doctor reach the verbs only
// through it; New wires one from braid's config and what its caller gives.
type Attacher struct {
	// Builder builds a container's plan from the request.
	Builder *plan.Builder
	Invoker Invoker
	Journal Journal
	// Recorder is nil without API access: then nothing is recorded.
	Recorder Recorder
	// Claims, when set, gets the network data of devices allocated through
	// DRA ResourceClaims.
	Claims ClaimWriter
	// Routes applies default-route requests inside the pod's netns;
	// gateway.ApplyToNetns in production.
	Routes func(netnsPath string, reqs []gateway.Request) error
	// Parallel attaches the secondary networks concurrently, after the
	// cluster network (braidd's parallelAttach).
	Parallel bool
	// Locks are the containers' locks: ADD, DEL and CHECK of one container
	// run one at a time, and GC deletes each container under its lock.
	// Empty: no locking (the caller runs nothing concurrently).
	Locks lock.Dir
	// ReadinessFile, when set, must exist before ADD goes on (the cluster
	// network's sign that it is up); ReadinessTimeout bounds the wait.
	ReadinessFile    string
	ReadinessTimeout time.Duration
	Log              *slog.Logger
}

// API is what braid reads from and writes to the API server. Without it
// (no kubeconfig) only the cluster network is attached and nothing is
// recorded.
type API struct {
	Pods     plan.PodGetter
	NADs     nad.Getter
	Recorder Recorder
	// Claims lists the devices of a pod's DRA ResourceClaims and writes
	// back what became of them; nil: device plugins only.
	Claims ClaimAPI
}

// ClaimAPI is what braid does with DRA ResourceClaims (devices.Claims).
type ClaimAPI interface {
	devices.Lister
	ClaimWriter
}

// Options are what a caller gives the core besides braid's config: the
// thin plugin its per-call clients, braidd its informer-backed API,
// delegate metrics and parallel attach.
type Options struct {
	// API is nil without API access.
	API *API
	// Exec runs delegate binaries; nil runs them for real.
	Exec invoke.Exec
	// WrapInvoker, when set, wraps the delegate invoker (braidd measures
	// each delegate with it).
	WrapInvoker func(Invoker) Invoker
	// Parallel attaches the secondary networks concurrently.
	Parallel bool
	// ReadinessTimeout bounds the wait for the readiness indicator file.
	ReadinessTimeout time.Duration
	// Log is where the verbs log; nil discards.
	Log *slog.Logger
}

// New wires the core for one call from braid's config.
func New(conf *netconf.NetConf, o Options) *Attacher {
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	resolver := &nad.Resolver{ConfDir: conf.ConfDir}
	// Devices of device-backed networks: the kubelet's, and with API
	// access those of DRA ResourceClaims.
	sources := devices.Sources{&devices.Kubelet{Socket: conf.PodResourcesSocket, Checkpoint: conf.DeviceCheckpoint}}
	a := &Attacher{
		Builder: &plan.Builder{
			Conf:       conf,
			Resolver:   resolver,
			DeviceInfo: devices.InfoDir(conf.DeviceInfoDir),
			Log:        log,
		},
		Invoker:          delegate.NewInvoker(conf.BinDirs(), conf.CNIDir, o.Exec),
		Journal:          journal.New(conf.CNIDir),
		Routes:           gateway.ApplyToNetns,
		Parallel:         o.Parallel,
		Locks:            lock.ForCNIDir(conf.CNIDir),
		ReadinessFile:    conf.ReadinessIndicatorFile,
		ReadinessTimeout: o.ReadinessTimeout,
		Log:              log,
	}
	if o.WrapInvoker != nil {
		a.Invoker = o.WrapInvoker(a.Invoker)
	}
	if api := o.API; api != nil {
		a.Builder.Pods = api.Pods
		resolver.NADs = api.NADs
		a.Recorder = api.Recorder
		if api.Claims != nil {
			sources = append(sources, api.Claims)
			a.Claims = api.Claims
		}
	}
	a.Builder.Devices = sources
	return a
}

// Request is what one verb is asked: the container, its netns and
// interface, the pod, the runtime's args and capability args (the plan's
// input), the version of ADD's result and the attachments GC keeps.
type Request struct {
	plan.Request
	CNIVersion string
	Valid      []types.GCAttachment
}

// NewRequest is the request of a runtime's call: its container, netns,
// interface and CNI_ARGS (the pod's K8S_POD_* keys; every pair is passed
// on to the delegates), with the config's runtimeConfig, cniVersion and
// valid attachments.
func NewRequest(conf *netconf.NetConf, containerID, netns, ifName, cniArgs string) (Request, error) {
	k8sArgs, err := netconf.ParseArgs(cniArgs)
	if err != nil {
		return Request{}, err
	}
	return Request{
		Request: plan.Request{
			ContainerID: containerID,
			NetNS:       netns,
			IfName:      ifName,
			Args:        splitArgs(cniArgs),
			Pod: plan.PodRef{
				Namespace: string(k8sArgs.K8S_POD_NAMESPACE),
				Name:      string(k8sArgs.K8S_POD_NAME),
				UID:       k8stypes.UID(k8sArgs.K8S_POD_UID),
			},
			RuntimeConfig: conf.RuntimeConfig,
		},
		CNIVersion: conf.CNIVersion,
		Valid:      conf.ValidAttachments,
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

// Run runs the verb command names (a CNI_COMMAND) and returns ADD's
// result; the other verbs return none.
func (a *Attacher) Run(ctx context.Context, command string, req Request) (types.Result, error) {
	switch command {
	case "ADD":
		return a.Add(ctx, req)
	case "DEL":
		return nil, a.Del(ctx, req)
	case "CHECK":
		return nil, a.Check(ctx, req)
	case "STATUS":
		return nil, a.Status(ctx, req)
	case "GC":
		return nil, a.GC(ctx, req)
	}
	return nil, types.NewError(types.ErrInvalidEnvironmentVariables, fmt.Sprintf("unknown CNI_COMMAND %q", command), "")
}

// lock takes the container's lock for verb. release gives it back;
// release(true) also removes the lock file (braid is done with the
// container).
func (a *Attacher) lock(ctx context.Context, verb, containerID string) (release func(done bool), err error) {
	if a.Locks == "" {
		return func(bool) {}, nil
	}
	held, err := a.Locks.Lock(ctx, containerID)
	if err != nil {
		return nil, types.NewError(types.ErrTryAgainLater, fmt.Sprintf("%s of container %s", verb, containerID), err.Error())
	}
	return func(done bool) {
		if done {
			held.Remove()
			return
		}
		held.Unlock()
	}, nil
}

// waitReady waits for the readiness indicator file. Not there in time:
// try again later.
func (a *Attacher) waitReady(ctx context.Context) error {
	if a.ReadinessFile == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, a.ReadinessTimeout)
	defer cancel()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		if _, err := os.Stat(a.ReadinessFile); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return types.NewError(types.ErrTryAgainLater, fmt.Sprintf("readiness indicator file %s did not appear within %s", a.ReadinessFile, a.ReadinessTimeout), "")
		case <-tick.C:
		}
	}
}

// cleanupTimeout bounds a rollback or DEL that runs after the verb's own
// deadline has passed: cleaning up must not be cut short by the failure
// that made it necessary.
const cleanupTimeout = 30 * time.Second

func runtimeFor(p *plan.Plan, a *plan.Attachment, netns string) delegate.Runtime {
	return delegate.Runtime{
		ContainerID:    p.ContainerID,
		NetNS:          netns,
		IfName:         a.IfName,
		Args:           p.Args,
		CapabilityArgs: a.CapabilityArgs,
	}
}

func (a *Attacher) save(p *plan.Plan) error {
	if err := a.Journal.Save(p); err != nil {
		return types.NewError(types.ErrIOFailure, fmt.Sprintf("write journal for container %s", p.ContainerID), err.Error())
	}
	return nil
}
