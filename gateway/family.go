package gateway

import (
	"net"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/vishvananda/netlink"
)

// The IP families, numbered as netlink numbers them. 0 stands for "not
// known".
const (
	IPv4 = netlink.FAMILY_V4
	IPv6 = netlink.FAMILY_V6
)

// Family returns IPv4 or IPv6 for ip, or 0 if ip is not an address. An
// IPv4-mapped IPv6 address (::ffff:10.0.0.1) is IPv4, as net.IP stores every
// IPv4 address parsed from text that way.
func Family(ip net.IP) int {
	switch {
	case ip.To4() != nil:
		return IPv4
	case len(ip) == net.IPv6len:
		return IPv6
	}
	return 0
}

// RouteFamily is the family of a CNI result's route: that of its
// destination, or of its gateway when the destination was left out. It is 0
// when neither says; such a route belongs to no family, so no family's
// default route is taken to be it.
func RouteFamily(route *types.Route) int {
	if route.Dst.IP != nil {
		return Family(route.Dst.IP)
	}
	return Family(route.GW)
}

// FamilyName returns "IPv4" or "IPv6".
func FamilyName(f int) string {
	switch f {
	case IPv4:
		return "IPv4"
	case IPv6:
		return "IPv6"
	}
	return "unknown family"
}
