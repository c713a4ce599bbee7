package webhook

import (
	"errors"
	"fmt"
	"strings"

	"github.com/containernetworking/cni/pkg/types"
	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/braid-cni/braid/annotations"
	"github.com/braid-cni/braid/delegate"
	"github.com/braid-cni/braid/nad"
	"github.com/braid-cni/braid/netconf"
)

// checkNAD returns why braid could not load the NAD's spec.config, or nil.
// An empty spec.config is allowed: braid then reads the config named like
// the NAD from the node's CNI config dir. It runs what ADD runs: nad.Config,
// the resolver's step from spec.config to delegate config, then
// delegate.Load.
func checkNAD(obj *nadv1.NetworkAttachmentDefinition) error {
	conf, err := nad.Config(obj.Name, obj.Spec.Config)
	if err != nil {
		return errors.New(cniMessage(err))
	}
	if conf == nil {
		return nil
	}
	d, err := delegate.Load(conf)
	if err != nil {
		return fmt.Errorf("%s: %s", nad.ConfigField, cniMessage(err))
	}
	// braid refuses these at ADD; stored, they would only wait for a pod.
	for _, bin := range d.Binaries() {
		if netconf.IsBraid(bin.Type) {
			return fmt.Errorf("%s: %s is %q, which is braid itself: braid never runs itself as a delegate", nad.ConfigField, bin.Field, bin.Type)
		}
	}
	return nil
}

// checkPod returns why braid would refuse the pod's networks annotation,
// or nil. namespace is the request's (a pod being created may not carry
// one yet): it is the default for elements that name none.
func checkPod(pod *corev1.Pod, namespace string, braid *netconf.NetConf) error {
	if braid == nil {
		braid = &netconf.NetConf{}
	}
	if _, err := annotations.SkipDefaultNetworks(pod.Annotations); err != nil {
		return fmt.Errorf("metadata.annotations[%s]: %w", annotations.SkipDefaultNetworksKey, err)
	}
	raw, ok := pod.Annotations[annotations.NetworksKey]
	if !ok {
		return nil
	}
	field := "metadata.annotations[" + annotations.NetworksKey + "]"
	sels, err := annotations.ParseNetworks(raw, namespace)
	if err != nil {
		return fmt.Errorf("%s: %w", field, err)
	}
	if err := annotations.CheckCount(len(sels), braid.NetworkLimit()); err != nil {
		return fmt.Errorf("%s: %w", field, err)
	}
	if err := annotations.Validate(sels, annotations.PodIfName); err != nil {
		return fmt.Errorf("%s: %s", field, joined(err))
	}
	for _, sel := range sels {
		if !braid.NamespaceAllowed(namespace, sel.Namespace) {
			return fmt.Errorf("%s: network %s/%s: namespace isolation: a pod in %q may not use networks of namespace %q", field, sel.Namespace, sel.Name, namespace, sel.Namespace)
		}
	}
	return nil
}

// cniMessage is a CNI error's message and details on one line.
func cniMessage(err error) string {
	var te *types.Error
	if errors.As(err, &te) {
		if te.Details != "" {
			return te.Msg + ": " + te.Details
		}
		return te.Msg
	}
	return err.Error()
}

// joined puts the errors of an errors.Join on one line.
func joined(err error) string {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		msgs := make([]string, 0, len(j.Unwrap()))
		for _, e := range j.Unwrap() {
			msgs = append(msgs, e.Error())
		}
		return strings.Join(msgs, "; ")
	}
	return err.Error()
}
