package attacher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/braid-cni/braid/delegate"
	"github.com/braid-cni/braid/gateway"
	"github.com/braid-cni/braid/plan"
	"github.com/braid-cni/braid/result"
	"github.com/braid-cni/braid/status"
)

// Add attaches the cluster network and every network the pod selects, under
// the container's lock, once the cluster network is ready: build the plan,
// then carry it out (addPlan). A plan that cannot be built leaves a Warning
// event on the pod and nothing else.
func (a *Attacher) Add(ctx context.Context, req Request) (types.Result, error) {
	release, err := a.lock(ctx, "ADD", req.ContainerID)
	if err != nil {
		return nil, err
	}
	defer release(false)
	if err := a.waitReady(ctx); err != nil {
		return nil, err
	}
	id, pod := req.ContainerID, req.Pod.Namespace+"/"+req.Pod.Name
	p, err := a.Builder.Build(ctx, req.Request)
	if err != nil {
		a.Log.Error("ADD refused", "container", id, "pod", pod, "error", err)
		a.refused(ctx, req.Pod, err)
		return nil, err
	}
	res, err := a.addPlan(ctx, p, req.CNIVersion)
	if err != nil {
		a.Log.Error("ADD failed", "container", id, "pod", pod, "error", err)
		return nil, err
	}
	a.Log.Info("ADD done", "container", id, "pod", pod, "interfaces", len(p.Attachments))
	return res, nil
}

// addPlan carries out a plan, in order: journal it (before the first
// delegate runs, so a crash leaves what DEL needs), invoke each attachment,
// apply the default routes, journal the results, merge them at cniVersion,
// record network-status and events. On any failure everything already
// attached is deleted again, in reverse order, and the journal entry is
// removed. Each failed attachment leaves its own Warning event; what fails
// after the delegates leaves one too.
func (a *Attacher) addPlan(ctx context.Context, p *plan.Plan, cniVersion string) (types.Result, error) {
	if err := a.save(p); err != nil {
		a.warn(ctx, p.Pod, ReasonAddFailed, "add: "+message(err))
		return nil, err
	}
	results, err := a.invokeAll(ctx, p)
	if err != nil {
		a.rollback(ctx, p, len(results)-1)
		return nil, err
	}
	merged, err := a.finish(ctx, p, results, cniVersion)
	if err != nil {
		a.warn(ctx, p.Pod, ReasonAddFailed, "add: "+message(err))
		a.rollback(ctx, p, len(results)-1)
		return nil, err
	}
	a.claimNetworkData(ctx, p, results)
	return merged, nil
}

// finish is what follows the delegates: the default routes, the results
// journaled, merged, and recorded.
func (a *Attacher) finish(ctx context.Context, p *plan.Plan, results []*current.Result, cniVersion string) (types.Result, error) {
	if err := a.defaultRoutes(p, results); err != nil {
		return nil, err
	}
	if err := a.saveResults(p, results); err != nil {
		return nil, err
	}
	merged, err := result.Merge(cniVersion, toResults(results))
	if err != nil {
		return nil, types.NewError(types.ErrInternal, fmt.Sprintf("merge results for container %s", p.ContainerID), err.Error())
	}
	if err := a.record(ctx, p, results, nil); err != nil {
		return nil, err
	}
	return merged, nil
}

// saveResults journals each attachment's result with the plan: DEL and
// CHECK hand it to the delegate as prevResult.
func (a *Attacher) saveResults(p *plan.Plan, results []*current.Result) error {
	for i := range p.Attachments {
		raw, err := json.Marshal(results[i])
		if err != nil {
			return types.NewError(types.ErrInternal, fmt.Sprintf("encode result of %s", p.Attachments[i].Network), err.Error())
		}
		p.Attachments[i].Result = raw
	}
	// The intent, saved durably before the first delegate ran, already
	// names every attachment: should a crash lose this version, DEL still
	// deletes them all.
	if err := a.Journal.Update(p); err != nil {
		return types.NewError(types.ErrIOFailure, fmt.Sprintf("write journal for container %s", p.ContainerID), err.Error())
	}
	return nil
}

// invokeAll runs ADD for each attachment in order. On failure the returned
// slice holds the results so far plus a nil for the one that failed, so the
// rollback covers it too (a failed ADD may have left something behind).
func (a *Attacher) invokeAll(ctx context.Context, p *plan.Plan) ([]*current.Result, error) {
	if a.Parallel && len(p.Attachments) > 2 {
		return a.invokeParallel(ctx, p)
	}
	results := make([]*current.Result, 0, len(p.Attachments))
	for i := range p.Attachments {
		res, err := a.invokeOne(ctx, p, i)
		if err != nil {
			return append(results, nil), err
		}
		results = append(results, res)
	}
	return results, nil
}

// invokeParallel attaches the cluster network first (the others may rely on
// the pod's netns being set up), then every other network at once. Results
// stay in plan order. On failure every attachment counts as tried, so the
// rollback deletes them all, in reverse order; the first failure in plan
// order is the one reported.
func (a *Attacher) invokeParallel(ctx context.Context, p *plan.Plan) ([]*current.Result, error) {
	results := make([]*current.Result, len(p.Attachments))
	res, err := a.invokeOne(ctx, p, 0)
	if err != nil {
		return results[:1], err
	}
	results[0] = res
	errs := make([]error, len(p.Attachments))
	var wg sync.WaitGroup
	for i := 1; i < len(p.Attachments); i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = a.invokeOne(ctx, p, i)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return results, err
		}
	}
	return results, nil
}

// invokeOne runs ADD for attachment i.
func (a *Attacher) invokeOne(ctx context.Context, p *plan.Plan, i int) (*current.Result, error) {
	att := &p.Attachments[i]
	d, err := delegate.Load(att.Config)
	if err != nil {
		return nil, a.attachmentFailed(ctx, p, att, nil, err)
	}
	a.Log.Debug("adding", "container", p.ContainerID, "network", att.Network, "ifname", att.IfName, "plugins", d.Types())
	if err := prepareDevice(att); err != nil {
		return nil, a.attachmentFailed(ctx, p, att, d, err)
	}
	res, err := a.Invoker.Add(ctx, d, runtimeFor(p, att, p.NetNS))
	if err != nil {
		return nil, a.attachmentFailed(ctx, p, att, d, err)
	}
	cur, err := current.NewResultFromResult(res)
	if err != nil {
		a.warn(ctx, p.Pod, ReasonAddFailed, fmt.Sprintf("add %s (%s, %s): result: %v", att.IfName, att.Network, strings.Join(d.Types(), ","), err))
		return nil, types.NewError(types.ErrDecodingFailure, fmt.Sprintf("network %s (interface %s): result", att.Network, att.IfName), err.Error())
	}
	return cur, nil
}

// defaultRoutes applies the plan's default-route requests to the pod's
// netns, the results and libcni's cached results.
func (a *Attacher) defaultRoutes(p *plan.Plan, results []*current.Result) error {
	// Build computed the requests; a plan without them (put together by
	// hand) gets them from its attachments, checked as Build checks them.
	reqs, err := p.RouteRequests()
	if err != nil {
		return err
	}
	if len(reqs) == 0 {
		return nil
	}
	if err := a.Routes(p.NetNS, reqs); err != nil {
		return types.NewError(types.ErrInternal, fmt.Sprintf("set default route in %s", p.NetNS), err.Error())
	}
	if err := gateway.ApplyToResults(results, reqs); err != nil {
		return types.NewError(types.ErrInternal, "default route in results", err.Error())
	}
	// libcni's cache must say what the netns says, or DEL and CHECK would
	// be handed a prevResult that no longer matches.
	for i := range p.Attachments {
		att := &p.Attachments[i]
		d, err := delegate.Load(att.Config)
		if err != nil {
			return delegate.Rebuild(err, att.Network, att.IfName)
		}
		if err := a.Invoker.SetCachedResult(d, runtimeFor(p, att, p.NetNS), results[i]); err != nil {
			return types.NewError(types.ErrIOFailure, fmt.Sprintf("network %s (interface %s): update cached result", att.Network, att.IfName), err.Error())
		}
	}
	return nil
}

// record writes network-status and the events: one per reason, listing
// every interface it concerns (an ADD of any number of networks is one
// event). A pod deleted meanwhile is not an error: there is nothing left to
// record on.
func (a *Attacher) record(ctx context.Context, p *plan.Plan, results []*current.Result, events []podEvent) error {
	if a.Recorder == nil || p.Pod.Name == "" {
		return nil
	}
	holder := gateway.Holder(results)
	atts := make([]status.Attachment, len(p.Attachments))
	for i, att := range p.Attachments {
		atts[i] = status.Attachment{Network: att.Network, IfName: att.IfName, Default: i == holder, Result: results[i], DeviceInfo: a.deviceInfo(&p.Attachments[i])}
	}
	statuses, err := status.Build(atts)
	if err != nil {
		return types.NewError(types.ErrInternal, "build network-status", err.Error())
	}
	ref := p.Pod
	if events == nil {
		for i, att := range p.Attachments {
			events = append(events, addedEvent(&att, results[i]))
		}
	}
	// The events go alongside the status: a recorder that writes inline (the
	// thin plugin) costs one round trip, not one more per event. They tell
	// what the delegates did, which stays true if the status write then
	// fails the ADD.
	var wg sync.WaitGroup
	for _, ev := range merge(events) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := a.Recorder.Event(ctx, ref, "Normal", ev.reason, ev.message); err != nil {
				a.Log.Warn("event not recorded", "pod", p.Pod.Namespace+"/"+p.Pod.Name, "reason", ev.reason, "error", err)
			}
		}()
	}
	err = a.Recorder.Record(ctx, ref, statuses)
	wg.Wait()
	if err != nil {
		if status.PodGone(err) {
			a.Log.Info("pod deleted or recreated before its network-status was written", "pod", p.Pod.Namespace+"/"+p.Pod.Name)
			return nil
		}
		return types.NewError(types.ErrTryAgainLater, "record network-status", err.Error())
	}
	return nil
}

// podEvent is what one interface contributes to a Normal event record
// sends with the status: its reason, the action that message starts with,
// and the interface's part.
type podEvent struct{ reason, action, item string }

// addedEvent is the part of an attachment that was added.
func addedEvent(att *plan.Attachment, res *current.Result) podEvent {
	return podEvent{ReasonAddedInterface, "Add", fmt.Sprintf("%s [%s] from %s", att.IfName, ipList(res), att.Network)}
}

// removedEvent is the part of an attachment that was removed.
func removedEvent(att *plan.Attachment) podEvent {
	return podEvent{ReasonRemovedInterface, "Remove", fmt.Sprintf("%s from %s", att.IfName, att.Network)}
}

// maxEventMessage is the longest message merge writes: the size the
// events.k8s.io API allows an event's note.
const maxEventMessage = 1024

// eventMessage is one event to send.
type eventMessage struct{ reason, message string }

// merge makes one event per reason, in the order the reasons first come,
// its message the action and every interface's part: "Add eth0 [10.1.0.5/24]
// from cluster, net1 [10.2.0.5/24] from ns/blue". Parts that would make the
// message too long are counted instead of listed.
func merge(events []podEvent) []eventMessage {
	var out []eventMessage
	for i, ev := range events {
		if slices.ContainsFunc(events[:i], func(e podEvent) bool { return e.reason == ev.reason }) {
			continue
		}
		var items []string
		for _, e := range events[i:] {
			if e.reason == ev.reason {
				items = append(items, e.item)
			}
		}
		out = append(out, eventMessage{ev.reason, joinParts(ev.action, items)})
	}
	return out
}

// joinParts writes "action part, part, ..." within maxEventMessage bytes,
// ending in "and K more" when some parts did not fit.
func joinParts(action string, parts []string) string {
	msg := action + " " + parts[0]
	for i, p := range parts[1:] {
		more := fmt.Sprintf(", and %d more", len(parts)-1-i)
		if len(msg)+2+len(p)+len(", and 999 more") > maxEventMessage {
			return msg + more
		}
		msg += ", " + p
	}
	return msg
}

func ipList(res *current.Result) string {
	ips := make([]string, len(res.IPs))
	for i, ip := range res.IPs {
		ips[i] = ip.Address.String()
	}
	return strings.Join(ips, " ")
}

// rollback deletes attachments last..0. Del removes the journal entry when
// everything was deleted; when something was not, the entry stays, so the
// runtime's own DEL after the failed ADD finds the whole plan again.
func (a *Attacher) rollback(ctx context.Context, p *plan.Plan, last int) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	trimmed := *p
	trimmed.Attachments = p.Attachments[:last+1]
	if err := a.delPlan(ctx, &trimmed, p.NetNS); err != nil {
		a.Log.Error("rollback left something behind; the journal keeps the plan for the runtime's DEL", "container", p.ContainerID, "error", err)
	}
}

func toResults(rs []*current.Result) []types.Result {
	out := make([]types.Result, len(rs))
	for i, r := range rs {
		out[i] = r
	}
	return out
}

// Reasons of the Warning events a failed ADD leaves on the pod, so that
// kubectl describe pod says which network failed and why.
const (
	// ReasonAddFailed: a delegate, or braid after the delegates, failed.
	ReasonAddFailed = "AddFailed"
	// ReasonDelFailed: removing an interface from a running pod failed.
	ReasonDelFailed = "DelFailed"
	// ReasonNetworkNotReady: the plan could not be built because something
	// is not there yet (a NetworkAttachmentDefinition, the pod); the
	// kubelet retries.
	ReasonNetworkNotReady = "NetworkNotReady"
	// ReasonInvalidNetworks: the pod's networks cannot be attached as asked
	// (a bad annotation, a duplicate interface, a bad NAD config).
	ReasonInvalidNetworks = "InvalidNetworks"
)

// Reasons of the Normal events: an interface added (at ADD, or to a
// running pod) or removed from a running pod.
const (
	ReasonAddedInterface   = "AddedInterface"
	ReasonRemovedInterface = "RemovedInterface"
)

// eventTimeout bounds a failure event, which is sent after the verb's own
// deadline may have passed (a timeout is a failure worth telling too).
const eventTimeout = 5 * time.Second

// attachmentFailed leaves the Warning event of a failed attachment, naming
// the interface, the network, the plugin and the delegate's own message,
// and returns the error rebuilt with that context for the runtime.
func (a *Attacher) attachmentFailed(ctx context.Context, p *plan.Plan, att *plan.Attachment, d *delegate.Delegate, err error) error {
	plugin := "?"
	var de *delegate.Error
	switch {
	case errors.As(err, &de):
		plugin = de.Plugin
	case d != nil:
		plugin = strings.Join(d.Types(), ",")
	}
	a.warn(ctx, p.Pod, ReasonAddFailed, fmt.Sprintf("add %s (%s, %s): %s", att.IfName, att.Network, plugin, message(err)))
	a.claimFailed(ctx, p, att, err)
	return delegate.Rebuild(err, att.Network, att.IfName)
}

// refused leaves a Warning event on a pod whose plan could not be built
// (err is the Builder's): a missing NAD, a bad networks annotation.
func (a *Attacher) refused(ctx context.Context, pod plan.PodRef, err error) {
	reason := ReasonInvalidNetworks
	var te *types.Error
	if errors.As(err, &te) && te.Code == types.ErrTryAgainLater {
		reason = ReasonNetworkNotReady
	}
	a.warn(ctx, pod, reason, "networks: "+message(err))
}

// warn sends a Warning event; best effort, like every event. It gets its
// own deadline, detached from ctx's.
func (a *Attacher) warn(ctx context.Context, pod plan.PodRef, reason, msg string) {
	if a.Recorder == nil || pod.Name == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), eventTimeout)
	defer cancel()
	if err := a.Recorder.Event(ctx, pod, "Warning", reason, msg); err != nil {
		a.Log.Warn("event not recorded", "pod", pod.Namespace+"/"+pod.Name, "reason", reason, "error", err)
	}
}

// message is what a failure says, without the wrapping that names the
// plugin (the event says that itself): a CNI error's message and details,
// else the innermost delegate error, else err.
func message(err error) string {
	var te *types.Error
	if errors.As(err, &te) {
		if te.Details != "" {
			return te.Msg + ": " + te.Details
		}
		return te.Msg
	}
	var de *delegate.Error
	if errors.As(err, &de) {
		return de.Err.Error()
	}
	return err.Error()
}
