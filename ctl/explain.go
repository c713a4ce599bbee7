package ctl

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/containernetworking/cni/libcni"
	corev1 "k8s.io/api/core/v1"

	"github.com/braid-cni/braid/annotations"
	"github.com/braid-cni/braid/delegate"
	"github.com/braid-cni/braid/gateway"
	"github.com/braid-cni/braid/nad"
	"github.com/braid-cni/braid/netconf"
	"github.com/braid-cni/braid/plan"
)

// defaultBraidConfig is where braid's config sits on a node.
const defaultBraidConfig = "/etc/cni/net.d/00-braid.conflist"

// Placeholders for what only a runtime knows; nothing is attached.
const (
	explainContainerID = "explain"
	explainNetNS       = "/var/run/netns/explain"
)

// ExplainInput is what explain plans for.
type ExplainInput struct {
	// Config is braid's config file: a plugin config, or a conflist whose
	// first plugin is braid or braid-shim.
	Config []byte
	// RuntimeConfig is the runtime's capability args (portMappings, ...);
	// libcni passes braid the ones its config declares, as here.
	RuntimeConfig map[string]any
	Pod           *corev1.Pod
	NADs          nad.Getter // nil: no API access, as a plugin without kubeconfig
}

// Explanation is the plan braid would execute for one pod.
type Explanation struct {
	Pod          string               `json:"pod"`
	Attachments  []ExplainedAttach    `json:"attachments"`
	DefaultRoute []DefaultRouteChoice `json:"defaultRoute"`
	// IgnoredRuntimeConfig are the runtime's capability args that braid's
	// config does not declare: libcni never hands them to braid.
	IgnoredRuntimeConfig []string `json:"ignoredRuntimeConfig,omitempty"`
}

// ExplainedAttach is one interface of the plan.
type ExplainedAttach struct {
	Interface string `json:"interface"`
	Network   string `json:"network"`
	Cluster   bool   `json:"cluster,omitempty"`
	// Plugins is the chain in order, with the runtimeConfig libcni hands
	// each plugin (the capability args it declares).
	Plugins []ExplainedPlugin `json:"plugins"`
	// Config is the delegate config exactly as it will be run.
	Config         json.RawMessage `json:"config"`
	CapabilityArgs map[string]any  `json:"capabilityArgs,omitempty"`
	// UnusedCapabilityArgs are asked for but declared by no plugin of the
	// chain: libcni drops them.
	UnusedCapabilityArgs []string `json:"unusedCapabilityArgs,omitempty"`
	DefaultRoute         []string `json:"defaultRouteRequest,omitempty"`
	// Device is the device of a device-backed network; without access to
	// the node's kubelet only its resource is known.
	Device *plan.Device `json:"device,omitempty"`
}

// ExplainedPlugin is one plugin of a chain.
type ExplainedPlugin struct {
	Type          string         `json:"type"`
	RuntimeConfig map[string]any `json:"runtimeConfig,omitempty"`
}

// DefaultRouteChoice says which interface holds one family's default route.
type DefaultRouteChoice struct {
	Family    string `json:"family"`
	Interface string `json:"interface"`
	Network   string `json:"network"`
	Gateway   string `json:"gateway,omitempty"`
	Reason    string `json:"reason"`
}

// Explain builds the plan with the plugin's own builder and describes it.
// A pod the plugin would refuse gets the plugin's error, a *types.Error.
func Explain(ctx context.Context, in ExplainInput) (*Explanation, error) {
	if in.Pod == nil {
		return nil, errors.New("explain: no pod")
	}
	conf, ignored, err := explainConf(in.Config, in.RuntimeConfig)
	if err != nil {
		return nil, err
	}
	resolver := &nad.Resolver{ConfDir: conf.ConfDir, NADs: in.NADs}
	b := &plan.Builder{Conf: conf, Resolver: resolver, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if in.NADs != nil {
		b.Pods = explainPods{in.Pod}
	}
	p, err := b.Build(ctx, plan.Request{
		ContainerID:   explainContainerID,
		NetNS:         explainNetNS,
		IfName:        annotations.PodIfName,
		Pod:           plan.PodRef{Namespace: in.Pod.Namespace, Name: in.Pod.Name},
		RuntimeConfig: conf.RuntimeConfig,
	})
	if err != nil {
		return nil, err
	}
	ex := &Explanation{Pod: in.Pod.Namespace + "/" + in.Pod.Name, IgnoredRuntimeConfig: ignored}
	for _, a := range p.Attachments {
		ea, err := explainAttachment(a)
		if err != nil {
			return nil, err
		}
		ex.Attachments = append(ex.Attachments, *ea)
	}
	ex.DefaultRoute = defaultRouteChoices(p)
	return ex, nil
}

// explainConf reads braid's config as the plugin gets it: a conflist's
// name and cniVersion injected into braid's entry, and the runtime's
// capability args as runtimeConfig, limited to what braid declares; the
// keys left out come second.
func explainConf(data []byte, runtimeConfig map[string]any) (*netconf.NetConf, []string, error) {
	var probe struct {
		Plugins json.RawMessage `json:"plugins"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, nil, fmt.Errorf("braid config: %w", err)
	}
	var conf *libcni.PluginConfig
	if probe.Plugins != nil {
		list, err := libcni.NetworkConfFromBytes(data)
		if err != nil {
			return nil, nil, fmt.Errorf("braid config: %w", err)
		}
		if len(list.Plugins) == 0 || !netconf.IsBraid(list.Plugins[0].Network.Type) {
			return nil, nil, fmt.Errorf("braid config: conflist %q does not start with braid or braid-shim", list.Name)
		}
		conf, err = libcni.InjectConf(list.Plugins[0], map[string]any{"name": list.Name, "cniVersion": list.CNIVersion})
		if err != nil {
			return nil, nil, fmt.Errorf("braid config: %w", err)
		}
	} else {
		var err error
		if conf, err = libcni.NetworkPluginConfFromBytes(data); err != nil {
			return nil, nil, fmt.Errorf("braid config: %w", err)
		}
	}
	rc := map[string]any{}
	var ignored []string
	for _, capability := range sortedKeys(runtimeConfig) {
		if conf.Network.Capabilities[capability] {
			rc[capability] = runtimeConfig[capability]
		} else {
			ignored = append(ignored, capability)
		}
	}
	if len(rc) > 0 {
		var err error
		if conf, err = libcni.InjectConf(conf, map[string]any{"runtimeConfig": rc}); err != nil {
			return nil, nil, fmt.Errorf("braid config: %w", err)
		}
	}
	nc, err := netconf.Parse(conf.Bytes)
	return nc, ignored, err
}

func explainAttachment(a plan.Attachment) (*ExplainedAttach, error) {
	d, err := delegate.Load(a.Config)
	if err != nil {
		return nil, delegate.Rebuild(err, a.Network, a.IfName)
	}
	var doc struct {
		Type         string          `json:"type"`
		Capabilities map[string]bool `json:"capabilities"`
		Plugins      []struct {
			Type         string          `json:"type"`
			Capabilities map[string]bool `json:"capabilities"`
		} `json:"plugins"`
	}
	if err := json.Unmarshal(a.Config, &doc); err != nil {
		return nil, fmt.Errorf("network %s: decode config: %w", a.Network, err)
	}
	caps := []map[string]bool{doc.Capabilities}
	if d.IsList() {
		caps = caps[:0]
		for _, p := range doc.Plugins {
			caps = append(caps, p.Capabilities)
		}
	}
	used := map[string]bool{}
	ea := &ExplainedAttach{
		Interface: a.IfName, Network: a.Network, Cluster: a.Cluster,
		Config: a.Config, CapabilityArgs: a.CapabilityArgs, Device: a.Device,
	}
	for i, typ := range d.Types() {
		ep := ExplainedPlugin{Type: typ}
		for capability, on := range caps[i] {
			if v, ok := a.CapabilityArgs[capability]; ok && on {
				if ep.RuntimeConfig == nil {
					ep.RuntimeConfig = map[string]any{}
				}
				ep.RuntimeConfig[capability], used[capability] = v, true
			}
		}
		ea.Plugins = append(ea.Plugins, ep)
	}
	for capability := range a.CapabilityArgs {
		if !used[capability] {
			ea.UnusedCapabilityArgs = append(ea.UnusedCapabilityArgs, capability)
		}
	}
	sort.Strings(ea.UnusedCapabilityArgs)
	for _, gw := range a.DefaultRoute {
		ea.DefaultRoute = append(ea.DefaultRoute, gw.String())
	}
	return ea, nil
}

// defaultRouteChoices says, per family, what ADD does with the plan's
// default-route requests (Build computed them, and refused conflicting
// ones): a request moves its family's default route; without one the
// delegates' routes stand, and network-status marks the cluster network.
func defaultRouteChoices(p *plan.Plan) []DefaultRouteChoice {
	var out []DefaultRouteChoice
	for _, f := range []int{gateway.IPv4, gateway.IPv6} {
		choice := DefaultRouteChoice{
			Family: gateway.FamilyName(f), Interface: p.Attachments[0].IfName, Network: p.Attachments[0].Network,
			Reason: "no default-route request: the delegates' routes stand",
		}
		for _, r := range p.DefaultRoutes {
			if gateway.Family(r.GW) == f {
				a := p.Attachments[r.Attachment]
				choice = DefaultRouteChoice{Family: choice.Family, Interface: a.IfName, Network: a.Network, Gateway: r.GW.String(), Reason: "default-route request"}
			}
		}
		out = append(out, choice)
	}
	return out
}

// WriteExplanation writes the summary table, then each delegate config.
func WriteExplanation(w io.Writer, ex *Explanation) error {
	fmt.Fprintf(w, "Pod %s\n\n", ex.Pod)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "INTERFACE\tNETWORK\tPLUGINS\tCAPABILITY ARGS\tDEFAULT-ROUTE REQUEST")
	for _, a := range ex.Attachments {
		chain := make([]string, len(a.Plugins))
		for i, p := range a.Plugins {
			chain[i] = p.Type
		}
		network := a.Network
		if a.Cluster {
			network += " (cluster)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", a.Interface, network, strings.Join(chain, ","),
			dashIfEmpty(strings.Join(sortedKeys(a.CapabilityArgs), ",")), dashIfEmpty(strings.Join(a.DefaultRoute, ",")))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "\nDefault route:")
	for _, c := range ex.DefaultRoute {
		via := ""
		if c.Gateway != "" {
			via = " via " + c.Gateway
		}
		fmt.Fprintf(w, "  %s: %s (%s)%s: %s\n", c.Family, c.Interface, c.Network, via, c.Reason)
	}
	if len(ex.IgnoredRuntimeConfig) > 0 {
		fmt.Fprintf(w, "\nNot passed to braid (its config does not declare the capability): %s\n", strings.Join(ex.IgnoredRuntimeConfig, ", "))
	}
	for _, a := range ex.Attachments {
		var pretty bytes.Buffer
		if err := json.Indent(&pretty, a.Config, "", "  "); err != nil {
			return fmt.Errorf("network %s: indent config: %w", a.Network, err)
		}
		fmt.Fprintf(w, "\n--- %s: %s\n%s\n", a.Interface, a.Network, bytes.TrimSpace(pretty.Bytes()))
		if d := a.Device; d != nil {
			id := d.ID
			if id == "" {
				id = "(chosen at ADD from what the kubelet allocated to the pod)"
			}
			fmt.Fprintf(w, "device of %s: %s\n", d.Resource, id)
		}
		for _, p := range a.Plugins {
			if p.RuntimeConfig != nil {
				rc, err := json.Marshal(p.RuntimeConfig)
				if err != nil {
					return fmt.Errorf("network %s: encode runtimeConfig: %w", a.Network, err)
				}
				fmt.Fprintf(w, "runtimeConfig for %s: %s\n", p.Type, rc)
			}
		}
		if len(a.UnusedCapabilityArgs) > 0 {
			fmt.Fprintf(w, "not passed (no plugin declares the capability): %s\n", strings.Join(a.UnusedCapabilityArgs, ", "))
		}
	}
	return nil
}

func sortedKeys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func dashIfEmpty(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
