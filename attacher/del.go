package attacher

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/braid-cni/braid/delegate"
	"github.com/braid-cni/braid/nad"
	"github.com/braid-cni/braid/plan"
)

// Del detaches everything of a container, under its lock, and then removes
// the lock file too. It needs no API server when the journal has the plan,
// and never fails for a container it knows nothing about.
func (a *Attacher) Del(ctx context.Context, req Request) error {
	release, err := a.lock(ctx, "DEL", req.ContainerID)
	if err != nil {
		return err
	}
	id := req.ContainerID
	p := a.planForDel(ctx, req)
	if p != nil {
		err = a.delPlan(ctx, p, req.NetNS)
	}
	release(err == nil)
	if err != nil {
		a.Log.Error("DEL failed", "container", id, "error", err)
		return err
	}
	if p != nil {
		a.Log.Info("DEL done", "container", id, "interfaces", len(p.Attachments))
	}
	return nil
}

// planForDel reads the journal; without a usable entry it rebuilds the plan
// from the API, and without the API it falls back to the cluster network
// alone. nil means there is nothing to delete.
func (a *Attacher) planForDel(ctx context.Context, req Request) *plan.Plan {
	id := req.ContainerID
	p, err := a.Journal.Load(id)
	if err == nil {
		return p
	}
	if !errors.Is(err, fs.ErrNotExist) {
		a.Log.Warn("journal entry unusable; rebuilding the plan", "container", id, "error", err)
	}
	p, err = a.Builder.Build(ctx, req.Request)
	if err == nil {
		return p
	}
	a.Log.Warn("cannot rebuild the plan from the API; deleting the cluster network only", "container", id, "error", err)
	offline := *a.Builder
	offline.Pods = nil
	offline.Resolver = &nad.Resolver{ConfDir: a.Builder.Resolver.ConfDir}
	p, err = offline.Build(ctx, req.Request)
	if err != nil {
		a.Log.Error("no cluster network to delete", "container", id, "error", err)
		return nil
	}
	return p
}

// delPlan deletes every attachment of the plan in reverse order, going on past
// failures, and removes the journal entry once all succeeded (a failed DEL
// keeps it, so the runtime's retry finds the same plan). netns is the one the
// runtime gives now; it may be empty or gone, and delegates treat that as
// already deleted.
func (a *Attacher) delPlan(ctx context.Context, p *plan.Plan, netns string) error {
	var errs []*types.Error
	for i := len(p.Attachments) - 1; i >= 0; i-- {
		if te := a.delOne(ctx, p, &p.Attachments[i], netns); te != nil {
			errs = append(errs, te)
		}
	}
	if len(errs) > 0 {
		return joinCNI("DEL", p.ContainerID, errs)
	}
	if err := a.Journal.Remove(p.ContainerID); err != nil {
		return types.NewError(types.ErrIOFailure, fmt.Sprintf("remove journal of container %s", p.ContainerID), err.Error())
	}
	return nil
}

// delOne runs DEL for one attachment of p and releases its device. nil:
// it is gone, or its delegate refuses a config nothing can have been
// attached with.
func (a *Attacher) delOne(ctx context.Context, p *plan.Plan, att *plan.Attachment, netns string) *types.Error {
	d, err := delegate.Load(att.Config)
	if err == nil {
		err = a.Invoker.Del(ctx, d, runtimeFor(p, att, netns))
	}
	if err == nil {
		a.releaseDevice(p, att)
		return nil
	}
	te := delegate.Rebuild(err, att.Network, att.IfName)
	if refusesConfig(err, te, att) {
		a.Log.Warn("delegate refuses its config at DEL; nothing can have been attached with it", "container", p.ContainerID, "network", att.Network, "ifname", att.IfName, "error", te)
		a.releaseDevice(p, att)
		return nil
	}
	return te
}

// refusesConfig reports whether a delegate refused to act on its config at
// all: an incompatible version, an unsupported field or an invalid config.
// Such a delegate cannot have attached anything with this config, and a DEL
// that reported the refusal would fail on every retry, so the pod could never
// be torn down. A plugin that is not installed counts only for an attachment
// that never got a result: one that did was attached, and its binary may be
// back on the next retry (an upgrade in progress).
func refusesConfig(err error, te *types.Error, att *plan.Attachment) bool {
	var de *delegate.Error
	if errors.As(err, &de) && de.NotInstalled {
		return len(att.Result) == 0
	}
	switch te.Code {
	case types.ErrIncompatibleCNIVersion, types.ErrUnsupportedField, types.ErrInvalidNetworkConfig:
		return true
	}
	return false
}

// Check checks every journaled attachment of a container, under its lock.
func (a *Attacher) Check(ctx context.Context, req Request) error {
	release, err := a.lock(ctx, "CHECK", req.ContainerID)
	if err != nil {
		return err
	}
	defer release(false)
	p, err := a.Journal.Load(req.ContainerID)
	if err != nil {
		return types.NewError(types.ErrInvalidNetworkConfig, fmt.Sprintf("CHECK of container %s: no usable journal entry (was ADD run?)", req.ContainerID), err.Error())
	}
	return a.checkPlan(ctx, p, req.NetNS)
}

// checkPlan runs CHECK for every attachment, cluster network first.
func (a *Attacher) checkPlan(ctx context.Context, p *plan.Plan, netns string) error {
	for i := range p.Attachments {
		att := &p.Attachments[i]
		if len(att.Result) == 0 {
			return types.NewError(types.ErrInvalidNetworkConfig, fmt.Sprintf("network %s (interface %s): no result was journaled; ADD did not finish", att.Network, att.IfName), "")
		}
		d, err := delegate.Load(att.Config)
		if err == nil {
			err = a.Invoker.Check(ctx, d, runtimeFor(p, att, netns))
		}
		if err != nil {
			return delegate.Rebuild(err, att.Network, att.IfName)
		}
	}
	return nil
}

// Status asks the cluster network whether it is ready: the plan of no pod
// holds the cluster network alone.
func (a *Attacher) Status(ctx context.Context, req Request) error {
	req.Pod = plan.PodRef{}
	p, err := a.Builder.Build(ctx, req.Request)
	if err != nil {
		return err
	}
	if err := a.statusPlan(ctx, p); err != nil {
		return err
	}
	// Debug only: containerd 2 runs STATUS every few seconds.
	a.Log.Debug("STATUS done")
	return nil
}

// statusPlan asks the cluster network of a plan whether it is ready.
func (a *Attacher) statusPlan(ctx context.Context, p *plan.Plan) error {
	for i := range p.Attachments {
		att := &p.Attachments[i]
		if !att.Cluster {
			continue
		}
		d, err := delegate.Load(att.Config)
		if err == nil {
			err = a.Invoker.Status(ctx, d)
		}
		if err != nil {
			return delegate.Rebuild(err, att.Network, att.IfName)
		}
	}
	return nil
}

// joinCNI folds several delegate errors into one *types.Error: skel prints
// only one, so its message carries all of them; the first code is kept.
func joinCNI(verb, containerID string, errs []*types.Error) error {
	if len(errs) == 1 {
		return errs[0]
	}
	var b strings.Builder
	for i, e := range errs {
		msg := e.Msg
		if e.Details != "" {
			msg += " (" + e.Details + ")"
		}
		if i > 0 && b.Len()+len(msg) > maxJoinedMessage {
			fmt.Fprintf(&b, "; and %d more", len(errs)-i)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(msg)
	}
	return types.NewError(errs[0].Code, fmt.Sprintf("%s of container %s: %d networks failed: %s", verb, containerID, len(errs), b.String()), "")
}

// maxJoinedMessage bounds what joinCNI puts together: past it the rest are
// counted. The first message always goes in.
const maxJoinedMessage = 4096

// errorsAsCNI is errors.As for *types.Error.
func errorsAsCNI(err error) (*types.Error, bool) {
	var te *types.Error
	ok := errors.As(err, &te)
	return te, ok
}
