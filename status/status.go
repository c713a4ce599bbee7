// Package status tells the API server what braid attached: the
// k8s.v1.cni.cncf.io/network-status annotation, written with one PATCH of
// pods/status, and the events the attacher sends with it (one per ADD,
// listing every interface).
package status

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	nadutils "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/utils"

	"github.com/braid-cni/braid/gateway"
)

// Attachment is one attached network as the status reports it.
type Attachment struct {
	Network    string // "namespace/name" or the cluster network's config name
	IfName     string
	Default    bool // holds the pod's default route
	Result     types.Result
	DeviceInfo *nadv1.DeviceInfo
}

// Build turns attachment results into network-status entries, in order.
// A result with several sandbox interfaces gives one entry per interface.
func Build(atts []Attachment) ([]nadv1.NetworkStatus, error) {
	out := make([]nadv1.NetworkStatus, 0, len(atts))
	for _, a := range atts {
		entries, err := nadutils.CreateNetworkStatuses(a.Result, a.Network, a.Default, a.DeviceInfo)
		if err == nil && len(entries) == 0 {
			// A result that names no sandbox interface gives no entry
			// there; report the attachment as one entry all the same.
			var one *nadv1.NetworkStatus
			one, err = nadutils.CreateNetworkStatus(a.Result, a.Network, a.Default, a.DeviceInfo)
			entries = []*nadv1.NetworkStatus{one}
		}
		if err != nil {
			return nil, fmt.Errorf("network-status for %s (%s): %w", a.Network, a.IfName, err)
		}
		gws, err := gateways(a.Result)
		if err != nil {
			return nil, fmt.Errorf("network-status for %s (%s): %w", a.Network, a.IfName, err)
		}
		for _, e := range entries {
			if e == nil {
				continue
			}
			e.Gateway = gws
			if e.Interface == "" {
				// Plugins that report no sandbox interface still attached
				// one; say which.
				e.Interface = a.IfName
			}
			out = append(out, *e)
		}
	}
	return out, nil
}

// gateways lists the gateways of a result's default routes, by gateway's
// rules (a default route without "gw" goes through its result IP's gateway);
// the NAD client's helper would print "<nil>" for such a route.
func gateways(r types.Result) ([]string, error) {
	res, err := current.NewResultFromResult(r)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, route := range res.Routes {
		if route == nil || !gateway.IsDefault(&route.Dst) {
			continue
		}
		if gw := gateway.Via(route, res.IPs); gw != nil && !slices.Contains(out, gw.String()) {
			out = append(out, gw.String())
		}
	}
	return out, nil
}

// Marshal renders statuses as the annotation value.
func Marshal(statuses []nadv1.NetworkStatus) (string, error) {
	data, err := json.Marshal(statuses)
	if err != nil {
		return "", fmt.Errorf("encode network-status: %w", err)
	}
	return string(data), nil
}
