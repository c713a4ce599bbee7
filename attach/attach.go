package attach

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"

	"github.com/braid-cni/braid/delegate"
	"github.com/braid-cni/braid/gateway"
	"github.com/braid-cni/braid/journal"
	"github.com/braid-cni/braid/lock"
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
	Load(id string) (*plan.Plan, error)
	Remove(id string) error
	List() ([]string, error)
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

// Attacher carries out plans.
type Attacher struct {
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
	// Locks are the containers' locks; GC deletes each container under
	// its lock. Empty: no locking (the caller runs nothing concurrently).
	Locks lock.Dir
	Log   *slog.Logger
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
