package plan

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/containernetworking/cni/pkg/types"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/braid-cni/braid/annotations"
	"github.com/braid-cni/braid/delegate"
	"github.com/braid-cni/braid/devices"
	"github.com/braid-cni/braid/nad"
	"github.com/braid-cni/braid/netconf"
)

// PodGetter reads one pod.
type PodGetter interface {
	GetPod(ctx context.Context, namespace, name string) (*corev1.Pod, error)
}

// freshPodGetter is a PodGetter backed by a cache that can also read past
// it (the daemon's informers).
type freshPodGetter interface {
	FreshPod(ctx context.Context, namespace, name string) (*corev1.Pod, error)
}

// Request is what the runtime asked for.
type Request struct {
	ContainerID string
	NetNS       string
	IfName      string
	Args        [][2]string // CNI_ARGS, passed on to every delegate
	Pod         PodRef
	// RuntimeConfig is the runtime's own capability args; they go to the
	// cluster network.
	RuntimeConfig map[string]any
}

// Builder builds plans.
type Builder struct {
	Conf     *netconf.NetConf
	Pods     PodGetter // nil: no API access; only the cluster network and inline delegates
	Resolver *nad.Resolver
	// Devices lists the devices allocated to a pod, for device-backed
	// networks. nil: device IDs are left out (braidctl explain away from
	// the node); the plugin always has one.
	Devices devices.Lister
	// DeviceInfo is where device-info files are.
	DeviceInfo devices.InfoDir
	Log        *slog.Logger
}

// Build resolves everything the pod asks for. It touches no network; any
// error means nothing may be attached.
func (b *Builder) Build(ctx context.Context, req Request) (*Plan, error) {
	p := &Plan{
		Version:     Version,
		ContainerID: req.ContainerID,
		NetNS:       req.NetNS,
		IfName:      req.IfName,
		Args:        req.Args,
		Pod:         req.Pod,
		Pluggable:   true,
	}
	pod, err := b.pod(ctx, req.Pod)
	if err != nil {
		return nil, err
	}
	if pod != nil && p.Pod.UID == "" {
		// The status write's precondition: this pod, not one recreated
		// under its name meanwhile.
		p.Pod.UID = pod.UID
	}
	cluster, err := b.clusterNetwork(ctx, pod)
	if err != nil {
		return nil, err
	}
	p.Attachments = append(p.Attachments, Attachment{
		IfName:         req.IfName,
		Network:        cluster.Name,
		Cluster:        true,
		Config:         cluster.Config,
		CapabilityArgs: req.RuntimeConfig,
	})
	// wants[i] is the device the pod asked for on attachment i, resources[i]
	// the resource of a device-backed attachment.
	resources, wants := []string{resourceName(cluster)}, []string{""}
	inline, err := b.inlineDelegates()
	if err != nil {
		return nil, err
	}
	sels, defaults, err := b.selections(pod, req.IfName, len(inline))
	if err != nil {
		return nil, err
	}
	names, err := interfaceNames(req.IfName, len(inline), sels)
	if err != nil {
		return nil, err
	}
	for i, n := range inline {
		p.Attachments = append(p.Attachments, Attachment{IfName: names[i], Network: n.Name, Config: n.Config})
		resources, wants = append(resources, ""), append(wants, "")
	}
	atts, res, err := b.attachments(ctx, sels, names[len(inline):], defaults)
	if err != nil {
		return nil, err
	}
	for i, sel := range sels {
		p.Attachments = append(p.Attachments, *atts[i])
		resources, wants = append(resources, res[i]), append(wants, sel.DeviceID)
	}
	if err := b.checkDelegates(p); err != nil {
		return nil, err
	}
	if p.DefaultRoutes, err = routeRequests(p.Attachments); err != nil {
		return nil, err
	}
	if err := b.assignDevices(ctx, pod, p, resources, wants, nil); err != nil {
		return nil, err
	}
	return p, nil
}

// attachments resolves the selections, the first defaults of which are
// defaultNetworks, all at once: in the thin plugin each is a read from the
// API server, and N of them one after the other would cost N round trips.
// They come back in order with their resource names; the failure reported is
// the first in order.
func (b *Builder) attachments(ctx context.Context, sels []*annotations.Selection, names []string, defaults int) ([]*Attachment, []string, error) {
	atts, res, errs := make([]*Attachment, len(sels)), make([]string, len(sels)), make([]error, len(sels))
	var wg sync.WaitGroup
	for i, sel := range sels {
		wg.Go(func() { atts[i], res[i], errs[i] = b.attachment(ctx, sel, names[i], i < defaults) })
	}
	wg.Wait()
	for i := range sels {
		if errs[i] != nil {
			return nil, nil, errs[i]
		}
		atts[i].Selected = i >= defaults
	}
	return atts, res, nil
}

// pod reads the pod. No API access or no pod args: nil, nil. A pod that is
// not there (deleted before its sandbox came up) gets the cluster network
// only, so the runtime can finish; other API errors are "try again later".
func (b *Builder) pod(ctx context.Context, ref PodRef) (*corev1.Pod, error) {
	if b.Pods == nil || ref.Name == "" || ref.Namespace == "" {
		return nil, nil
	}
	pod, err := b.Pods.GetPod(ctx, ref.Namespace, ref.Name)
	if apierrors.IsNotFound(err) {
		b.Log.Warn("pod not found; attaching the cluster network only", "pod", ref.Namespace+"/"+ref.Name)
		return nil, nil
	}
	if err != nil {
		return nil, types.NewError(types.ErrTryAgainLater, fmt.Sprintf("get pod %s/%s: %v", ref.Namespace, ref.Name, err), "")
	}
	if ref.UID != "" && pod.UID != ref.UID {
		// A cache may still hold the pod this one replaced: ask once more,
		// past the cache, before telling the runtime to come back.
		if fresh, ok := b.Pods.(freshPodGetter); ok {
			if pod, err = fresh.FreshPod(ctx, ref.Namespace, ref.Name); err != nil {
				return nil, types.NewError(types.ErrTryAgainLater, fmt.Sprintf("get pod %s/%s: %v", ref.Namespace, ref.Name, err), "")
			}
		}
	}
	if ref.UID != "" && pod.UID != ref.UID {
		return nil, types.NewError(types.ErrTryAgainLater, fmt.Sprintf("pod %s/%s has UID %s, the runtime asked for %s (the pod was recreated)", ref.Namespace, ref.Name, pod.UID, ref.UID), "")
	}
	return pod, nil
}

// clusterNetwork picks the network for CNI_IFNAME: the pod's default-network
// annotation, else clusterNetwork, else the first inline delegate.
func (b *Builder) clusterNetwork(ctx context.Context, pod *corev1.Pod) (*nad.Network, error) {
	if pod != nil {
		raw := pod.Annotations[annotations.DefaultNetworkKey]
		sel, err := annotations.ParseDefaultNetwork(raw, b.Conf.MultusNamespace)
		if err != nil {
			return nil, invalid("pod %s/%s: annotation %s: %v", pod.Namespace, pod.Name, annotations.DefaultNetworkKey, err)
		}
		if sel != nil {
			if sel.Namespace != b.Conf.MultusNamespace && !b.Conf.NamespaceAllowed(pod.Namespace, sel.Namespace) {
				return nil, b.isolationError(pod, sel)
			}
			return b.Resolver.NAD(ctx, sel.Namespace, sel.Name)
		}
	}
	if b.Conf.ClusterNetwork != "" {
		return b.Resolver.ClusterNetwork(ctx, b.Conf.MultusNamespace, b.Conf.ClusterNetwork)
	}
	all, err := b.allInline()
	if err != nil {
		return nil, err
	}
	return all[0], nil
}

// inlineDelegates are the legacy "delegates" entries after the first: every
// pod gets them.
func (b *Builder) inlineDelegates() ([]*nad.Network, error) {
	if b.Conf.ClusterNetwork != "" || len(b.Conf.Delegates) < 2 {
		return nil, nil
	}
	all, err := b.allInline()
	if err != nil {
		return nil, err
	}
	return all[1:], nil
}

func (b *Builder) allInline() ([]*nad.Network, error) {
	out := make([]*nad.Network, 0, len(b.Conf.Delegates))
	for i, raw := range b.Conf.Delegates {
		n, err := nad.Inline(raw)
		if err != nil {
			return nil, invalid("delegates[%d]: %v", i, err)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, invalid("no cluster network: set clusterNetwork or delegates")
	}
	return out, nil
}

// checkDelegates loads every attachment's config as ADD will run it and
// refuses a chain that would run braid itself, whatever the config's source
// (a NAD, a confDir file, the cluster network, an inline delegate): braid
// never runs as its own delegate, so nothing from a NAD can reach braid's
// settings, and braid never calls itself without bound.
func (b *Builder) checkDelegates(p *Plan) error {
	for i := range p.Attachments {
		att := &p.Attachments[i]
		d, err := delegate.Load(att.Config)
		if err != nil {
			return delegate.Rebuild(err, att.Network, att.IfName)
		}
		for _, bin := range d.Binaries() {
			if b.Conf.IsOwnType(bin.Type) {
				return invalid("network %s (interface %s): %s is %q, which is braid itself: braid never runs itself as a delegate", att.Network, att.IfName, bin.Field, bin.Type)
			}
		}
	}
	return nil
}

func invalid(format string, args ...any) error {
	return types.NewError(types.ErrInvalidNetworkConfig, fmt.Sprintf(format, args...), "")
}
