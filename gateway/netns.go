package gateway

import (
	"errors"
	"fmt"
	"net"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
)

// ApplyToNetns enters the network namespace at netnsPath and, for each
// request, deletes every default route of the request's family from the main
// table, whichever interface it is on, then adds a default route via the
// request's gateway on the interface named by the request.
//
// All interfaces are looked up before any route is touched. If adding a
// route fails, the default routes deleted for it are put back (best effort)
// and the add error is returned; requests applied before it stay applied.
func ApplyToNetns(netnsPath string, reqs []Request) error {
	if err := checkRequests(reqs); err != nil {
		return fmt.Errorf("netns %s: %w", netnsPath, err)
	}
	if len(reqs) == 0 {
		return nil
	}
	netns, err := ns.GetNS(netnsPath)
	if err != nil {
		return fmt.Errorf("set default routes: open netns %s: %w", netnsPath, err)
	}
	defer netns.Close()
	return netns.Do(func(ns.NetNS) error {
		links := make([]netlink.Link, len(reqs))
		for i, req := range reqs {
			link, err := netlink.LinkByName(req.IfName)
			if err != nil {
				return fmt.Errorf("default route via %s on %s in netns %s: find interface: %w", req.GW, req.IfName, netnsPath, err)
			}
			links[i] = link
		}
		for i, req := range reqs {
			if err := replaceDefault(links[i], req.GW); err != nil {
				return fmt.Errorf("default route via %s on %s in netns %s: %w", req.GW, req.IfName, netnsPath, err)
			}
		}
		return nil
	})
}

// replaceDefault deletes every default route of gw's family and adds one via
// gw on link. If the add fails, it puts the deleted routes back.
func replaceDefault(link netlink.Link, gw net.IP) error {
	f := Family(gw)
	old, err := listDefaults(f)
	if err != nil {
		return err
	}
	var deleted []netlink.Route
	for _, route := range old {
		if err := netlink.RouteDel(&route); err != nil {
			return errors.Join(fmt.Errorf("delete route %s: %w", route, err), restore(deleted))
		}
		deleted = append(deleted, route)
	}
	route := &netlink.Route{LinkIndex: link.Attrs().Index, Dst: defaultDst(f), Gw: gw}
	if err := netlink.RouteAdd(route); err != nil {
		return errors.Join(fmt.Errorf("add route: %w", err), restore(deleted))
	}
	return nil
}

// restore adds routes back, carrying on past failures.
func restore(routes []netlink.Route) error {
	var errs []error
	for _, route := range routes {
		route = addable(route)
		if err := netlink.RouteAdd(&route); err != nil {
			errs = append(errs, fmt.Errorf("restore route %s: %w", route, err))
		}
	}
	return errors.Join(errs...)
}

// addable returns a listed route in a form the kernel takes back. A listed
// route carries next-hop status flags the kernel sets itself, such as
// linkdown on a veth whose peer is down, and the kernel refuses a request
// that contains them.
func addable(route netlink.Route) netlink.Route {
	const settable = int(netlink.FLAG_ONLINK | netlink.FLAG_PERVASIVE)
	route.Flags &= settable
	if route.MultiPath != nil {
		hops := make([]*netlink.NexthopInfo, len(route.MultiPath))
		for i, hop := range route.MultiPath {
			h := *hop
			h.Flags &= settable
			hops[i] = &h
		}
		route.MultiPath = hops
	}
	return route
}

// listDefaults lists the default routes of family f (IPv4 or IPv6) in the
// current network namespace. Without a table filter netlink returns the main
// table only, which is where default routes live; policy-routing tables are
// not ours to change.
func listDefaults(f int) ([]netlink.Route, error) {
	routes, err := netlink.RouteList(nil, f)
	if err != nil {
		return nil, fmt.Errorf("list %s routes: %w", FamilyName(f), err)
	}
	var defaults []netlink.Route
	for _, route := range routes {
		if IsDefault(route.Dst) {
			defaults = append(defaults, route)
		}
	}
	return defaults, nil
}

// Route is a default route as found in a network namespace.
type Route struct {
	IfName string // empty for a multipath route, which has no single interface
	GW     net.IP
	Family int // IPv4 or IPv6
}

// DefaultRoutes lists the default routes in the main table of the network
// namespace at netnsPath, IPv4 first, for tests and diagnostics.
func DefaultRoutes(netnsPath string) ([]Route, error) {
	var out []Route
	err := ns.WithNetNSPath(netnsPath, func(ns.NetNS) error {
		for _, f := range []int{IPv4, IPv6} {
			routes, err := listDefaults(f)
			if err != nil {
				return err
			}
			for _, route := range routes {
				r := Route{GW: route.Gw, Family: f}
				if route.LinkIndex > 0 {
					link, err := netlink.LinkByIndex(route.LinkIndex)
					if err != nil {
						return fmt.Errorf("find interface %d: %w", route.LinkIndex, err)
					}
					r.IfName = link.Attrs().Name
				}
				out = append(out, r)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list default routes in netns %s: %w", netnsPath, err)
	}
	return out, nil
}
