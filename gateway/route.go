package gateway

import (
	"fmt"
	"net"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/vishvananda/netlink"
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
	Attachment int    // index into the results slice and the attachment list
	IfName     string // the attachment's interface name inside the pod
	GW         net.IP
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
		families[family(req.GW)] = true
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
		r.Routes = append(r.Routes, &types.Route{Dst: *defaultDst(family(req.GW)), GW: req.GW})
	}
	return nil
}

// withoutDefaults returns a new slice holding the routes that are not
// default routes of one of families. It does not reuse routes' array, which
// the result conversions of the cni library may share between results.
func withoutDefaults(routes []*types.Route, families map[int]bool) []*types.Route {
	kept := make([]*types.Route, 0, len(routes))
	for _, route := range routes {
		if route != nil && IsDefault(&route.Dst) && families[routeFamily(route)] {
			continue
		}
		kept = append(kept, route)
	}
	return kept
}

// routeFamily is the family of a result's route: that of its destination, or
// of its gateway when the destination was left out. It is 0 when neither
// says, and such a route is left alone.
func routeFamily(route *types.Route) int {
	if route.Dst.IP != nil {
		return family(route.Dst.IP)
	}
	return family(route.GW)
}

// checkRequests checks that every request has a gateway address and that no
// family is asked for twice.
func checkRequests(reqs []Request) error {
	seen := make(map[int]Request)
	for _, req := range reqs {
		f := family(req.GW)
		if f == 0 {
			return fmt.Errorf("default route on %s: gateway %q is not an IP address", req.IfName, req.GW)
		}
		if prev, ok := seen[f]; ok {
			return fmt.Errorf("%s default route requested twice: via %s on %s and via %s on %s",
				familyName(f), prev.GW, prev.IfName, req.GW, req.IfName)
		}
		seen[f] = req
	}
	return nil
}

// family returns netlink.FAMILY_V4 or netlink.FAMILY_V6 for ip, or 0 if ip
// is not an address.
func family(ip net.IP) int {
	switch {
	case ip.To4() != nil:
		return netlink.FAMILY_V4
	case len(ip) == net.IPv6len:
		return netlink.FAMILY_V6
	}
	return 0
}

func familyName(f int) string {
	if f == netlink.FAMILY_V4 {
		return "IPv4"
	}
	return "IPv6"
}

// defaultDst returns 0.0.0.0/0 or ::/0.
func defaultDst(f int) *net.IPNet {
	if f == netlink.FAMILY_V4 {
		return &net.IPNet{IP: make(net.IP, net.IPv4len), Mask: net.CIDRMask(0, 8*net.IPv4len)}
	}
	return &net.IPNet{IP: make(net.IP, net.IPv6len), Mask: net.CIDRMask(0, 8*net.IPv6len)}
}
