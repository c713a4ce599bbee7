package attacher

import (
	"context"
	"errors"
	"io/fs"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/braid-cni/braid/delegate"
	"github.com/braid-cni/braid/plan"
)

// GC deletes, with a full DEL of all its delegates, every journaled container
// that is not among the request's valid attachments (and completed records
// a crash left without their entry); then it sends GC to each delegate network braid
// knows of, with that network's attachments that are still valid. libcni
// issues the GC verb only to networks of version 1.1.0 or later.
func (a *Attacher) GC(ctx context.Context, req Request) error {
	keep := map[string]bool{}
	for _, v := range req.Valid {
		keep[v.ContainerID] = true
	}
	if pruned, err := a.Journal.Prune(); err != nil {
		a.Log.Warn("cannot prune the journal's completed records", "error", err)
	} else if len(pruned) > 0 {
		a.Log.Info("pruned completed records without an entry", "containers", pruned)
	}
	ids, err := a.Journal.List()
	if err != nil {
		return types.NewError(types.ErrIOFailure, "list journal", err.Error())
	}
	var errs []*types.Error
	nets := newNetworkSet()
	liveUnknown := false
	for _, id := range ids {
		p, err := a.Journal.Load(id)
		if err != nil {
			a.Log.Warn("journal entry unreadable; left for doctor", "container", id, "error", err)
			liveUnknown = liveUnknown || keep[id]
			continue
		}
		nets.add(p, keep[id])
		if keep[id] {
			continue
		}
		if err := a.collect(ctx, id); err != nil {
			te, _ := errorsAsCNI(err)
			errs = append(errs, te)
		}
	}
	if liveUnknown {
		// A live container whose plan is unreadable has attachments that
		// no valid list below would name, and a delegate's GC would tear
		// them down under the running pod.
		a.Log.Warn("a valid container's journal entry is unreadable; not sending GC to delegates")
		nets = newNetworkSet()
	}
	for _, n := range nets.list() {
		if err := a.Invoker.GC(ctx, n.d, n.valid); err != nil {
			errs = append(errs, delegate.Rebuild(err, n.network, "*"))
		}
	}
	if len(errs) > 0 {
		return joinCNI("GC", "*", errs)
	}
	return nil
}

// collect deletes one container under its lock: a runtime's ADD, DEL or
// CHECK of it runs before or after, never meanwhile. The plan is read again
// under the lock; a container deleted meanwhile is done.
func (a *Attacher) collect(ctx context.Context, id string) error {
	done := func(bool) {}
	if a.Locks != "" {
		held, err := a.Locks.Lock(ctx, id)
		if err != nil {
			return types.NewError(types.ErrTryAgainLater, "GC of container "+id, err.Error())
		}
		done = func(deleted bool) {
			if deleted {
				held.Remove()
				return
			}
			held.Unlock()
		}
	}
	p, err := a.Journal.Load(id)
	if errors.Is(err, fs.ErrNotExist) {
		done(true)
		return nil
	}
	if err != nil {
		done(false)
		a.Log.Warn("journal entry unreadable; left for doctor", "container", id, "error", err)
		return nil
	}
	a.Log.Info("garbage-collecting container", "container", id)
	err = a.delPlan(ctx, p, p.NetNS)
	done(err == nil)
	return err
}

type gcNetwork struct {
	network string
	d       *delegate.Delegate
	valid   []types.GCAttachment
}

// networkSet collects the delegate networks of journaled plans by CNI name.
type networkSet struct {
	order []string
	byKey map[string]*gcNetwork
}

func newNetworkSet() *networkSet { return &networkSet{byKey: map[string]*gcNetwork{}} }

func (s *networkSet) add(p *plan.Plan, valid bool) {
	for _, att := range p.Attachments {
		d, err := delegate.Load(att.Config)
		if err != nil {
			continue
		}
		// libcni's GC deletes every cached attachment of a network name
		// that is not in the valid list, so one name gets one list.
		key := d.Name()
		n, ok := s.byKey[key]
		if !ok {
			n = &gcNetwork{network: att.Network, d: d}
			s.byKey[key] = n
			s.order = append(s.order, key)
		}
		if valid {
			n.valid = append(n.valid, types.GCAttachment{ContainerID: p.ContainerID, IfName: att.IfName})
		}
	}
}

func (s *networkSet) list() []*gcNetwork {
	out := make([]*gcNetwork, len(s.order))
	for i, k := range s.order {
		out[i] = s.byKey[k]
	}
	return out
}
