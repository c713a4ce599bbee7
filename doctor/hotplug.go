package doctor

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/braid-cni/braid/annotations"
	"github.com/braid-cni/braid/journal"
	"github.com/braid-cni/braid/netconf"
	"github.com/braid-cni/braid/plan"
)

const nameHotplug = "hot-plug"

// CheckHotplug looks, on a thin node, for running pods whose networks
// annotation and journaled attachments differ: thin mode attaches networks
// at ADD only, so the change waits for the pod's next sandbox. In thick
// mode braidd applies such changes itself.
func CheckHotplug(ctx context.Context, conf *netconf.NetConf, o Options) Result {
	if conf.DaemonSocketDir != "" {
		return ok(nameHotplug, "thick mode: braidd applies changes of running pods' networks annotations")
	}
	pods := o.Pods
	if pods == nil {
		if conf.Kubeconfig == "" {
			return ok(nameHotplug, "no kubeconfig: braid reads no networks annotation")
		}
		clients, err := clientsFor(conf.Kubeconfig, o.timeout())
		if err != nil {
			return warn(nameHotplug, "cannot read pods: "+err.Error(), "see the kubeconfig check")
		}
		pods = clients
	}
	store := journal.New(conf.CNIDir)
	ids, err := store.List()
	if err != nil {
		return warn(nameHotplug, err.Error(), "check cniDir in braid's config")
	}
	var differ []string
	checked := 0
	for _, id := range ids {
		p, err := store.Load(id)
		if err != nil || !p.Pluggable || p.Pod.Name == "" {
			continue
		}
		ctx, cancel := context.WithTimeout(ctx, o.timeout())
		pod, err := pods.GetPod(ctx, p.Pod.Namespace, p.Pod.Name)
		cancel()
		if err != nil || pod.UID != p.Pod.UID {
			continue // gone or recreated: its runtime DEL is coming
		}
		checked++
		if d := differences(pod.Annotations[annotations.NetworksKey], pod.Namespace, p); d != "" {
			differ = append(differ, fmt.Sprintf("%s/%s (%s)", pod.Namespace, pod.Name, d))
		}
	}
	if len(differ) > 0 {
		return warn(nameHotplug, fmt.Sprintf("thin mode attaches networks at ADD only; %d running pods differ from their networks annotation: %s", len(differ), strings.Join(differ, ", ")),
			"recreate those pods, or run braid in thick mode, where braidd applies annotation changes to running pods")
	}
	return ok(nameHotplug, fmt.Sprintf("%d running pods match their networks annotation", checked))
}

// differences says what the annotation asks of p that p does not have, as
// hot-plug would match them; "" when nothing.
func differences(annotation, namespace string, p *plan.Plan) string {
	sels, err := annotations.ParseNetworks(annotation, namespace)
	if err != nil {
		return "the networks annotation does not parse"
	}
	var have []plan.Interface
	for _, a := range p.Attachments {
		if a.Selected {
			have = append(have, plan.Interface{Network: a.Network, IfName: a.IfName})
		}
	}
	kept := plan.Match(sels, have)
	var out []string
	for i, sel := range sels {
		if kept[i] < 0 {
			out = append(out, "add "+sel.String())
		}
	}
	for j, h := range have {
		if !slices.Contains(kept, j) {
			out = append(out, "remove "+h.IfName)
		}
	}
	return strings.Join(out, "; ")
}
