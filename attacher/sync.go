package attacher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"slices"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/braid-cni/braid/plan"
)

// Sync brings a running container's attachments in line with its pod's
// networks annotation (hot-plug), under the container's lock, and returns
// what changed: nil when there is no such container (never attached, or
// the runtime's DEL came first) or its ADD has not finished. The steps:
// undo what an interrupted Sync left half-done, ask the plan builder for
// the change (a refused one leaves a Warning event), journal the plan with
// the new attachments before any delegate runs, DEL the removed ones (a
// new attachment may take a removed one's name), ADD the new ones, apply
// the default routes, journal the result, record network-status and one
// event per interface added or removed. A failed ADD is rolled back: the
// pod keeps what it had, less what was removed. The cluster network,
// inline delegates and defaultNetworks are never touched.
func (a *Attacher) Sync(ctx context.Context, req Request) (*plan.Change, error) {
	release, err := a.lock(ctx, "hot-plug", req.ContainerID)
	if err != nil {
		return nil, err
	}
	defer release(false)
	prev, err := a.Journal.Load(req.ContainerID)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, types.NewError(types.ErrIOFailure, fmt.Sprintf("hot-plug of container %s", req.ContainerID), err.Error())
	}
	if len(prev.Attachments) == 0 || len(prev.Attachments[0].Result) == 0 {
		return nil, nil // ADD has not finished: the runtime's DEL or its end decides
	}
	if prev, err = a.settle(ctx, prev); err != nil {
		return nil, err
	}
	c, err := a.Builder.Replan(ctx, prev)
	if err != nil {
		a.refused(ctx, prev.Pod, err)
		return nil, err
	}
	if c.Empty() {
		return c, nil
	}
	// The journal holds every attachment that may exist until the end:
	// the runtime's DEL, or the next Sync, finds the new ones too.
	intent := *c.Next
	intent.Attachments = slices.Clone(prev.Attachments)
	for _, i := range c.Added {
		intent.Attachments = append(intent.Attachments, c.Next.Attachments[i])
	}
	if err := a.save(&intent); err != nil {
		a.warn(ctx, prev.Pod, ReasonAddFailed, "hot-plug: "+message(err))
		return nil, err
	}
	events, err := a.detach(ctx, prev, c)
	if err != nil {
		return nil, err
	}
	results, err := a.attachNew(ctx, c, events)
	if err != nil {
		return nil, err
	}
	if err := a.defaultRoutes(c.Next, results); err != nil {
		return nil, a.failSync(ctx, c, err, events)
	}
	if err := a.saveResults(c.Next, results); err != nil {
		return nil, a.failSync(ctx, c, err, events)
	}
	for _, i := range c.Added {
		events = append(events, addedEvent(&c.Next.Attachments[i], results[i]))
	}
	if err := a.record(ctx, c.Next, results, events); err != nil {
		return nil, err
	}
	added := make([]*current.Result, len(results))
	for _, i := range c.Added {
		added[i] = results[i]
	}
	a.claimNetworkData(ctx, c.Next, added)
	a.Log.Info("hot-plug done", "container", req.ContainerID, "pod", prev.Pod.Namespace+"/"+prev.Pod.Name, "added", len(c.Added), "removed", len(c.Removed))
	return c, nil
}

// settle undoes what an interrupted Sync left: an attachment of the
// annotation's without a result may or may not exist, so it is deleted
// and left out; the change then adds it again if the pod still asks.
func (a *Attacher) settle(ctx context.Context, p *plan.Plan) (*plan.Plan, error) {
	kept := *p
	kept.Attachments = nil
	for i := range p.Attachments {
		att := &p.Attachments[i]
		if !att.Selected || len(att.Result) > 0 {
			kept.Attachments = append(kept.Attachments, *att)
			continue
		}
		if te := a.delOne(ctx, p, att, p.NetNS); te != nil {
			return nil, te
		}
	}
	if len(kept.Attachments) == len(p.Attachments) {
		return p, nil
	}
	if err := a.save(&kept); err != nil {
		return nil, err
	}
	return &kept, nil
}

// detach deletes the removed attachments, last first, and journals the
// plan without them. Their events come back to be sent with the status.
func (a *Attacher) detach(ctx context.Context, prev *plan.Plan, c *plan.Change) ([]podEvent, error) {
	var events []podEvent
	for i := len(c.Removed) - 1; i >= 0; i-- {
		att := &c.Removed[i]
		if te := a.delOne(ctx, prev, att, prev.NetNS); te != nil {
			a.warn(ctx, prev.Pod, ReasonDelFailed, fmt.Sprintf("remove %s (%s): %s", att.IfName, att.Network, message(te)))
			return nil, te
		}
		a.claimRemoved(ctx, prev, att)
		events = append(events, removedEvent(att))
	}
	return events, nil
}

// attachNew runs ADD for the new attachments in order and returns the
// results of every attachment of the next plan (the kept ones' as
// journaled). A failure deletes the new ones again and journals the plan
// without them; removed, the events of the attachments already removed,
// then go with the network-status of what is left.
func (a *Attacher) attachNew(ctx context.Context, c *plan.Change, removed []podEvent) ([]*current.Result, error) {
	results := make([]*current.Result, len(c.Next.Attachments))
	for i := range c.Next.Attachments {
		if slices.Contains(c.Added, i) {
			continue
		}
		res, err := resultOf(&c.Next.Attachments[i])
		if err != nil {
			return nil, a.failSync(ctx, c, err, removed)
		}
		results[i] = res
	}
	for _, i := range c.Added {
		res, err := a.invokeOne(ctx, c.Next, i)
		if err != nil {
			// invokeOne left the Warning event.
			return nil, a.undoSync(ctx, c, err, removed)
		}
		results[i] = res
	}
	return results, nil
}

// resultOf decodes the result ADD journaled for att.
func resultOf(att *plan.Attachment) (*current.Result, error) {
	var res current.Result
	if err := json.Unmarshal(att.Result, &res); err != nil {
		return nil, types.NewError(types.ErrDecodingFailure, fmt.Sprintf("network %s (interface %s): journaled result", att.Network, att.IfName), err.Error())
	}
	return &res, nil
}

// failSync reports what failed after the new attachments' delegates ran,
// then undoes them.
func (a *Attacher) failSync(ctx context.Context, c *plan.Change, err error, removed []podEvent) error {
	a.warn(ctx, c.Next.Pod, ReasonAddFailed, "hot-plug: "+message(err))
	return a.undoSync(ctx, c, err, removed)
}

// undoSync deletes the new attachments, last first, and journals the
// plan without them; err is returned. Should a DEL fail, the journal keeps
// the attachment (without a result) for the next Sync or the runtime's
// DEL. When attachments were removed before, network-status is rewritten
// for what is left, with their events.
func (a *Attacher) undoSync(ctx context.Context, c *plan.Change, err error, removed []podEvent) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	back := *c.Next
	back.Attachments = nil
	for i := range c.Next.Attachments {
		att := c.Next.Attachments[i]
		if !slices.Contains(c.Added, i) {
			back.Attachments = append(back.Attachments, att)
			continue
		}
		if te := a.delOne(ctx, c.Next, &att, c.Next.NetNS); te != nil {
			a.Log.Error("hot-plug rollback left an attachment behind; journaled for DEL", "container", c.Next.ContainerID, "network", att.Network, "ifname", att.IfName, "error", te)
			att.Result = nil
			back.Attachments = append(back.Attachments, att)
		}
	}
	if serr := a.save(&back); serr != nil {
		a.Log.Error("hot-plug rollback: journal not rewritten", "container", c.Next.ContainerID, "error", serr)
	}
	if len(removed) > 0 {
		a.recordLeft(ctx, &back, removed)
	}
	return err
}

// recordLeft writes the network-status of p, all of whose attachments are
// journaled with their results, and sends events; a failure is logged, the
// hot-plug's own error being what the caller reports.
func (a *Attacher) recordLeft(ctx context.Context, p *plan.Plan, events []podEvent) {
	results := make([]*current.Result, len(p.Attachments))
	for i := range p.Attachments {
		res, err := resultOf(&p.Attachments[i])
		if err != nil {
			a.Log.Error("hot-plug rollback: network-status not rewritten", "container", p.ContainerID, "error", err)
			return
		}
		results[i] = res
	}
	if err := a.record(ctx, p, results, events); err != nil {
		a.Log.Error("hot-plug rollback: network-status not rewritten", "container", p.ContainerID, "error", err)
	}
}
