package plan

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/containernetworking/cni/pkg/types"
	corev1 "k8s.io/api/core/v1"

	"github.com/braid-cni/braid/annotations"
	"github.com/braid-cni/braid/delegate"
)

// selections lists the secondary networks: defaultNetworks (not in system
// namespaces, nor for a pod that skips them), then the networks annotation, validated together so that
// interface names are unique across both.
// The count of defaultNetworks entries at the head of the list comes second.
// inline counts the legacy inline delegates every pod gets, for the limit.
func (b *Builder) selections(pod *corev1.Pod, runtimeIfName string, inline int) ([]*annotations.Selection, int, error) {
	if pod == nil {
		return nil, 0, nil
	}
	var sels []*annotations.Selection
	skip, err := annotations.SkipDefaultNetworks(pod.Annotations)
	if err != nil {
		return nil, 0, invalid("pod %s/%s: %v", pod.Namespace, pod.Name, err)
	}
	if !skip && !b.Conf.IsSystemNamespace(pod.Namespace) && len(b.Conf.DefaultNetworks) > 0 {
		defaults, err := annotations.ParseNetworks(strings.Join(b.Conf.DefaultNetworks, ","), b.Conf.MultusNamespace)
		if err != nil {
			return nil, 0, invalid("defaultNetworks: %v", err)
		}
		sels = append(sels, defaults...)
	}
	own, err := annotations.ParseNetworks(pod.Annotations[annotations.NetworksKey], pod.Namespace)
	if err != nil {
		return nil, 0, invalid("pod %s/%s: annotation %s: %v", pod.Namespace, pod.Name, annotations.NetworksKey, err)
	}
	// Before anything else looks at the list: its size is the pod's to choose.
	if err := annotations.CheckCount(inline+len(sels)+len(own), b.Conf.NetworkLimit()); err != nil {
		return nil, 0, invalid("pod %s/%s: %v", pod.Namespace, pod.Name, err)
	}
	if err := annotations.Validate(own, runtimeIfName); err != nil {
		return nil, 0, invalid("pod %s/%s: annotation %s: %v", pod.Namespace, pod.Name, annotations.NetworksKey, err)
	}
	for _, sel := range own {
		if !b.Conf.NamespaceAllowed(pod.Namespace, sel.Namespace) {
			return nil, 0, b.isolationError(pod, sel)
		}
	}
	defaults := len(sels)
	sels = append(sels, own...)
	if err := annotations.Validate(sels, runtimeIfName); err != nil {
		return nil, 0, invalid("pod %s/%s: defaultNetworks with the networks annotation: %v", pod.Namespace, pod.Name, err)
	}
	return sels, defaults, nil
}

func (b *Builder) isolationError(pod *corev1.Pod, sel *annotations.Selection) error {
	global := b.Conf.GlobalNamespaceList()
	if len(global) == 0 {
		global = []string{"default"} // what NamespaceAllowed falls back to
	}
	allowed := []string{pod.Namespace}
	for _, ns := range global {
		if ns != pod.Namespace {
			allowed = append(allowed, ns)
		}
	}
	return invalid("namespace isolation: pod %s/%s may not use network %s/%s from namespace %q (allowed namespaces: %s)",
		pod.Namespace, pod.Name, sel.Namespace, sel.Name, sel.Namespace, strings.Join(allowed, ", "))
}

// interfaceNames names the secondary interfaces: inline delegates and
// unnamed selections get net<position>, counting from 1 after the cluster
// network. A generated name that collides with a requested one is an error.
func interfaceNames(runtimeIfName string, inline int, sels []*annotations.Selection) ([]string, error) {
	taken := map[string]string{runtimeIfName: "the cluster network"}
	for _, sel := range sels {
		if sel.InterfaceRequest != "" {
			taken[sel.InterfaceRequest] = sel.String()
		}
	}
	names := make([]string, 0, inline+len(sels))
	for i := 0; i < inline+len(sels); i++ {
		if i >= inline && sels[i-inline].InterfaceRequest != "" {
			names = append(names, sels[i-inline].InterfaceRequest)
			continue
		}
		name := "net" + strconv.Itoa(i+1)
		if owner, ok := taken[name]; ok {
			return nil, invalid("interface %s for network %d would collide with the one requested by %s; name the interfaces explicitly", name, i+1, owner)
		}
		taken[name] = name
		names = append(names, name)
	}
	return names, nil
}

// attachment resolves one selection into an attachment. defaultNetworks
// entries, like clusterNetwork, may also name a config file in confDir.
// The resource of a device-backed network comes second.
func (b *Builder) attachment(ctx context.Context, sel *annotations.Selection, ifName string, isDefault bool) (*Attachment, string, error) {
	resolve := b.Resolver.NAD
	if isDefault {
		resolve = b.Resolver.ClusterNetwork
	}
	n, err := resolve(ctx, sel.Namespace, sel.Name)
	if err != nil {
		return nil, "", err
	}
	config := n.Config
	if sel.CNIArgs != nil {
		config, err = delegate.InjectCNIArgs(config, *sel.CNIArgs)
		if err != nil {
			return nil, "", types.NewError(types.ErrInvalidNetworkConfig, fmt.Sprintf("network %s: %v", n.Name, err), "")
		}
	}
	a := &Attachment{
		IfName:         ifName,
		Network:        n.Name,
		Config:         config,
		CapabilityArgs: capabilityArgs(sel),
		DefaultRoute:   sel.GatewayRequest,
	}
	if !isDefault {
		if a.Parameters, err = sel.Parameters(); err != nil {
			return nil, "", types.NewError(types.ErrInvalidNetworkConfig, fmt.Sprintf("network %s", n.Name), err.Error())
		}
	}
	return a, resourceName(n), nil
}

// capabilityArgs turns a selection's runtime requests into CNI capability
// args; libcni hands each to the plugins that declare it.
func capabilityArgs(sel *annotations.Selection) map[string]any {
	reqs := sel.RuntimeRequests()
	if len(reqs) == 0 {
		return nil
	}
	args := make(map[string]any, len(reqs))
	for _, r := range reqs {
		args[r.Capability] = r.Value
	}
	return args
}
