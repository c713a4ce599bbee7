package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	"github.com/vishvananda/netlink"

	"github.com/braid-cni/braid/e2e/framework"
)

const (
	// modeHotplug names the hot-plug round's directory and braid config;
	// it runs the thick path, as modeThick does.
	modeHotplug = "hotplug"
	// hotplugIDPrefix starts every hot-plug container ID.
	hotplugIDPrefix = "bench-hotplug-"
	// hotplugNADs: the pods are added with the first NAD and get the
	// second by hot-plug.
	hotplugNADs = 2
)

// How a step patches the pods: one pod at a time, each waiting for the
// last one's network-status, or every patch at once.
const (
	orderSequential = "sequential"
	orderConcurrent = "concurrent"
)

// hotplugOptions configure the hot-plug round.
type hotplugOptions struct {
	pods    int
	timeout time.Duration // for one pod's network-status to follow its patch
}

// hotplugStep is one pass over every pod: the second network attached
// (attach) or detached again.
type hotplugStep struct {
	order  string
	attach bool
	took   []time.Duration // Patch returned to network-status, of the pods that got there
	wall   time.Duration   // first patch to last network-status
	errs   []error         // timeouts, failed patches, wrong state in a sandbox
	syncs  float64         // braidd's hot-plug Syncs meanwhile
	synced time.Duration   // their mean duration, by braidd's own metrics
}

// hotplugResult is what runHotplug measured.
type hotplugResult struct {
	opts      hotplugOptions
	steps     []hotplugStep
	errs      []error // the ADDs and DELs around the steps
	leftovers []string
}

// hotplugRun is the round's state.
type hotplugRun struct {
	e       *env
	daemon  *framework.Braidd
	watch   *statusWatch
	boxes   []sandbox
	timeout time.Duration
	base    [][]string            // per sandbox: its interfaces after ADD, lo included
	added   []nadv1.NetworkStatus // per sandbox: the second network as network-status lists it
}

// runHotplug ADDs opts.pods pods through braidd with the first NAD, then
// attaches the second NAD to each by patching its networks annotation and
// detaches it again, one pod at a time and then all at once, timing each
// pod from its Patch's return until network-status says so, and checking
// each sandbox after every step. The runtime's DELs end it, and nothing
// may be left. Any failure fails the round.
func runHotplug(ctx context.Context, e *env, opts hotplugOptions, w io.Writer) error {
	pods, err := e.createPods(ctx, modeHotplug, opts.pods)
	if err != nil {
		return err
	}
	d, err := e.startDaemon(ctx, e.bin, "braidd-"+modeHotplug, e.braidSettings(modeHotplug))
	if err != nil {
		return err
	}
	watch, err := watchStatuses(ctx, e.kube)
	if err != nil {
		return err
	}
	defer watch.stop()
	boxes, err := e.newSandboxes(modeHotplug, hotplugIDPrefix, pods, d.SocketDir)
	if err != nil {
		return errors.Join(err, closeSandboxes(boxes))
	}
	h := &hotplugRun{e: e, daemon: d, watch: watch, boxes: boxes, timeout: opts.timeout,
		base: make([][]string, len(boxes)), added: make([]nadv1.NetworkStatus, len(boxes))}
	r := hotplugResult{opts: opts, errs: h.addAll(ctx)}
	if len(r.errs) == 0 {
		var err error
		if r.steps, err = h.steps(ctx); err != nil {
			r.errs = append(r.errs, err)
		}
	}
	// A failed ADD is deleted too, as a runtime does.
	_, _, delErrs := timeCalls(ctx, "DEL", boxes, createWorkers, delSandbox)
	r.errs = append(r.errs, delErrs...)
	// Checked before the namespaces go, as the burst does.
	r.leftovers, err = e.leftovers(modeHotplug, hotplugIDPrefix, hotplugNADs)
	if err := errors.Join(err, closeSandboxes(boxes)); err != nil {
		return err
	}
	printHotplug(w, r)
	return r.err()
}

// addAll ADDs every sandbox and waits for its pod's network-status, which
// braidd writes in the background; the interfaces it lists are the
// sandbox's base.
func (h *hotplugRun) addAll(ctx context.Context) []error {
	seen := make([]<-chan observed, len(h.boxes))
	for i, s := range h.boxes {
		seen[i] = h.watch.expect(s.pod.Name, hotplugged(false))
	}
	if _, _, errs := timeCalls(ctx, "ADD", h.boxes, createWorkers, addSandbox); len(errs) > 0 {
		return errs
	}
	var errs []error
	for i, s := range h.boxes {
		o, err := await(ctx, seen[i], h.timeout, "network-status of pod "+s.pod.Name+" after ADD")
		if err != nil {
			errs = append(errs, err)
			continue
		}
		h.base[i] = []string{"lo"}
		for _, st := range o.statuses {
			h.base[i] = append(h.base[i], st.Interface)
		}
	}
	return errs
}

// steps attaches the second network and detaches it, one pod at a time and
// then all at once. They stop when braidd's metrics cannot be read.
func (h *hotplugRun) steps(ctx context.Context) ([]hotplugStep, error) {
	var steps []hotplugStep
	for _, order := range []string{orderSequential, orderConcurrent} {
		for _, attach := range []bool{true, false} {
			s, err := h.step(ctx, order, attach)
			if err != nil {
				return steps, err
			}
			steps = append(steps, s)
		}
	}
	return steps, nil
}

// step attaches (attach) or detaches the second network on every pod in
// order, then checks every sandbox whose network-status followed. It
// fails only when braidd's metrics cannot be read.
func (h *hotplugRun) step(ctx context.Context, order string, attach bool) (hotplugStep, error) {
	s := hotplugStep{order: order, attach: attach}
	before, err := scrape(ctx, h.daemon.OpsAddr, syncSum, syncCount)
	if err != nil {
		return s, err
	}
	workers := 1
	if order == orderConcurrent {
		workers = len(h.boxes)
	}
	took := make([]time.Duration, len(h.boxes))
	done := make([]bool, len(h.boxes))
	start := time.Now()
	s.errs = parallel(len(h.boxes), workers, func(i int) error {
		var err error
		took[i], err = h.change(ctx, i, attach)
		done[i] = err == nil
		return err
	})
	s.wall = time.Since(start)
	for i := range h.boxes {
		if !done[i] {
			continue
		}
		s.took = append(s.took, took[i])
		if err := h.check(i, attach); err != nil {
			s.errs = append(s.errs, err)
		}
	}
	after, err := scrape(ctx, h.daemon.OpsAddr, syncSum, syncCount)
	if err != nil {
		return s, err
	}
	if s.syncs = after[syncCount] - before[syncCount]; s.syncs > 0 {
		s.synced = time.Duration((after[syncSum] - before[syncSum]) / s.syncs * float64(time.Second))
	}
	fmt.Fprintf(os.Stderr, "bench: hot-plug %-10s %-6s p50 %6.1f ms  max %6.1f ms  braidd's Sync %6.1f ms  %d errors\n",
		order, s.verb(), ms(percentile(s.took, 50)), ms(percentile(s.took, 100)), ms(s.synced), len(s.errs))
	return s, nil
}

// syncSum and syncCount are braidd's successful hot-plug Syncs, each from
// the controller's call to its return (the network-status queued, not yet
// written), in the metrics' text exposition.
const (
	syncSum   = `braid_request_duration_seconds_sum{result="ok",verb="HOTPLUG"}`
	syncCount = `braid_request_duration_seconds_count{result="ok",verb="HOTPLUG"}`
)

// change patches the networks annotation of sandbox i's pod to ask for
// the second network (attach) or not, and returns the time from the
// Patch's return to the first network-status the informer delivers that
// says so.
func (h *hotplugRun) change(ctx context.Context, i int, attach bool) (time.Duration, error) {
	pod := h.boxes[i].pod.Name
	networks := nadName(1)
	if attach {
		networks += ", " + nadName(2)
	}
	seen := h.watch.expect(pod, hotplugged(attach))
	if err := framework.SetNetworks(ctx, h.e.kube, namespace, pod, networks); err != nil {
		return 0, err
	}
	patched := time.Now()
	o, err := await(ctx, seen, h.timeout, fmt.Sprintf("pod %s: network-status for networks %q", pod, networks))
	if err != nil {
		return 0, err
	}
	if attach {
		h.added[i] = *listed(o.statuses, secondNetwork())
	}
	// braidd acts only on the accepted patch, but its status may reach
	// the informer before the Patch's answer reaches us: that is no time.
	return max(o.at.Sub(patched), 0), nil
}

// check looks into sandbox i's network namespace and at its leases on the
// second network: attached, it has its base interfaces and the second
// network's with the addresses network-status lists, and one lease;
// detached, its base interfaces only and no lease.
func (h *hotplugRun) check(i int, attached bool) error {
	s := h.boxes[i]
	links, err := addressesIn(s.netns)
	if err != nil {
		return fmt.Errorf("sandbox %s (pod %s): %w", s.id, s.pod.Name, err)
	}
	want := slices.Clone(h.base[i])
	if attached {
		want = append(want, h.added[i].Interface)
	}
	got := slices.Sorted(maps.Keys(links))
	slices.Sort(want)
	var errs []error
	if !slices.Equal(got, want) {
		errs = append(errs, fmt.Errorf("interfaces %v, want %v", got, want))
	}
	if attached {
		for _, ip := range h.added[i].IPs {
			if !slices.Contains(links[h.added[i].Interface], ip) {
				errs = append(errs, fmt.Errorf("%s has %v, network-status lists %s", h.added[i].Interface, links[h.added[i].Interface], ip))
			}
		}
	}
	leases, err := leasesHeld(filepath.Join(h.e.dataDir, nadName(2)), s.id)
	wantLeases := 0
	if attached {
		wantLeases = 1
	}
	if err != nil {
		errs = append(errs, err)
	} else if len(leases) != wantLeases {
		errs = append(errs, fmt.Errorf("%d leases on %s, want %d", len(leases), nadName(2), wantLeases))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sandbox %s (pod %s) after %s: %w", s.id, s.pod.Name, verb(attached), err)
	}
	return nil
}

// hotplugged wants a network-status that lists the first network and,
// as attached says, the second or not.
func hotplugged(attached bool) func([]nadv1.NetworkStatus) bool {
	first := namespace + "/" + nadName(1)
	return func(statuses []nadv1.NetworkStatus) bool {
		return listed(statuses, first) != nil && (listed(statuses, secondNetwork()) != nil) == attached
	}
}

// secondNetwork is the hot-plugged network as network-status names it.
func secondNetwork() string { return namespace + "/" + nadName(2) }

func verb(attach bool) string {
	if attach {
		return "add"
	}
	return "remove"
}

func (s hotplugStep) verb() string { return verb(s.attach) }

// err fails the round on any failure or leftover.
func (r hotplugResult) err() error {
	errs := slices.Clone(r.errs)
	for _, s := range r.steps {
		errs = append(errs, s.errs...)
	}
	return failures("hot-plug and CNI calls", errs, r.leftovers)
}

// addressesIn lists the links of a network namespace by name, each with
// its addresses.
func addressesIn(netns ns.NetNS) (map[string][]string, error) {
	out := map[string][]string{}
	err := netns.Do(func(ns.NetNS) error {
		links, err := netlink.LinkList()
		if err != nil {
			return err
		}
		for _, l := range links {
			addrs, err := netlink.AddrList(l, netlink.FAMILY_ALL)
			if err != nil {
				return fmt.Errorf("addresses of %s: %w", l.Attrs().Name, err)
			}
			ips := make([]string, len(addrs))
			for i, a := range addrs {
				ips[i] = a.IP.String()
			}
			out[l.Attrs().Name] = ips
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("links in %s: %w", netns.Path(), err)
	}
	return out, nil
}
