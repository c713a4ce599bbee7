package gateway

import (
	"fmt"
	"net"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
)

// IsDefault reports whether dst denotes a default route: nil, 0.0.0.0/0 or
// ::/0. The zero IPNet counts as nil, since that is how a types.Route
// carries a route whose dst was left out.
func IsDefault(dst *net.IPNet) bool {
	if dst == nil || (dst.IP == nil && dst.Mask == nil) {
		return true
	}
	ones, bits := dst.Mask.Size()
	return bits != 0 && ones == 0 && dst.IP.IsUnspecified()
}

// Request asks for the default route of one IP family to go through GW on
// the attachment at index Attachment.
type Request struct {
	Attachment int    `json:"attachment"` // index into the results slice and the attachment list
	IfName     string `json:"ifName"`     // the attachment's interface name inside the pod
	GW         net.IP `json:"gw"`
}

// Requests turns per-attachment gateway lists into requests: gws[i] is the
// "default-route" list of attachment i (nil for none) and ifNames[i] its
// interface name. A family can have one default route only, so a second
// gateway of the same family is an error naming both interfaces.
func Requests(ifNames []string, gws [][]net.IP) ([]Request, error) {
	if len(ifNames) != len(gws) {
		return nil, fmt.Errorf("default-route requests: %d interface names for %d gateway lists", len(ifNames), len(gws))
	}
	var reqs []Request
	for i, list := range gws {
		for _, gw := range list {
			reqs = append(reqs, Request{Attachment: i, IfName: ifNames[i], GW: gw})
		}
	}
	if err := checkRequests(reqs); err != nil {
		return nil, err
	}
	return reqs, nil
}

// ApplyToResults rewrites the results (index = attachment) so they say what
// the network namespace will say once ApplyToNetns has run: for each
// request's family, every default route of that family is removed from every
// result, and a default route via the request's gateway is added to the
// result of the request's attachment. Families with no request are left
// alone. A nil result is allowed except at a request's attachment. On error
// no result is changed.
func ApplyToResults(results []*current.Result, reqs []Request) error {
	if err := checkRequests(reqs); err != nil {
		return err
	}
	families := make(map[int]bool)
	for _, req := range reqs {
		if req.Attachment < 0 || req.Attachment >= len(results) || results[req.Attachment] == nil {
			return fmt.Errorf("default route via %s on %s: no result for attachment %d", req.GW, req.IfName, req.Attachment)
		}
		families[Family(req.GW)] = true
	}
	if len(reqs) == 0 {
		return nil
	}

	for _, r := range results {
		if r != nil {
			r.Routes = withoutDefaults(r.Routes, families)
		}
	}
	for _, req := range reqs {
		r := results[req.Attachment]
		r.Routes = append(r.Routes, &types.Route{Dst: *defaultDst(Family(req.GW)), GW: req.GW})
	}
	return nil
}

// withoutDefaults returns a new slice holding the routes that are not
// default routes of one of families. It does not reuse routes' array, which
// the result conversions of the cni library may share between results.
func withoutDefaults(routes []*types.Route, families map[int]bool) []*types.Route {
	kept := make([]*types.Route, 0, len(routes))
	for _, route := range routes {
		if route != nil && IsDefault(&route.Dst) && families[RouteFamily(route)] {
			continue
		}
		kept = append(kept, route)
	}
	return kept
}

// Via returns the gateway of a default route of a result whose IPs are ips:
// the route's own, or, when it has none (common in IPAM configs:
// {"dst": "0.0.0.0/0"}), the gateway of the first of ips of the route's
// family, which is the one the plugin installed the route with. It is nil
// when neither is known, as for a route of no family (see RouteFamily).
func Via(route *types.Route, ips []*current.IPConfig) net.IP {
	if route.GW != nil {
		return route.GW
	}
	f := RouteFamily(route)
	if f == 0 {
		return nil
	}
	for _, ip := range ips {
		if ip != nil && ip.Gateway != nil && Family(ip.Gateway) == f {
			return ip.Gateway
		}
	}
	return nil
}

// Holder returns the index of the result (index = attachment) that holds
// the pod's IPv4 default route, else the one that holds its IPv6 default
// route, else 0, the cluster network. Nil results and routes of no family
// are skipped.
func Holder(results []*current.Result) int {
	for _, f := range []int{IPv4, IPv6} {
		for i, r := range results {
			if r == nil {
				continue
			}
			for _, route := range r.Routes {
				if route != nil && IsDefault(&route.Dst) && RouteFamily(route) == f {
					return i
				}
			}
		}
	}
	return 0
}

// checkRequests checks that every request has a gateway address and that no
// family is asked for twice.
func checkRequests(reqs []Request) error {
	seen := make(map[int]Request)
	for _, req := range reqs {
		f := Family(req.GW)
		if f == 0 {
			return fmt.Errorf("default route on %s: gateway %q is not an IP address", req.IfName, req.GW)
		}
		if prev, ok := seen[f]; ok {
			return fmt.Errorf("%s default route requested twice: via %s on %s and via %s on %s",
				FamilyName(f), prev.GW, prev.IfName, req.GW, req.IfName)
		}
		seen[f] = req
	}
	return nil
}

// defaultDst returns 0.0.0.0/0 or ::/0.
func defaultDst(f int) *net.IPNet {
	if f == IPv4 {
		return &net.IPNet{IP: make(net.IP, net.IPv4len), Mask: net.CIDRMask(0, 8*net.IPv4len)}
	}
	return &net.IPNet{IP: make(net.IP, net.IPv6len), Mask: net.CIDRMask(0, 8*net.IPv6len)}
}
