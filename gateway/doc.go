// Package gateway owns braid's default-route rules, and moves a pod's
// default route onto a secondary network when the pod's networks annotation
// asks for it ("default-route": ["10.1.1.1"]).
//
// The rules, in one place for the plan, the attacher and network-status:
//   - A default route is one whose destination is nil, 0.0.0.0/0 or ::/0
//     (IsDefault): current kernels report the default route to netlink with
//     an explicit all-zero destination, where older ones left it out.
//   - A route's IP family is its destination's, else its gateway's
//     (RouteFamily); a route that names neither belongs to no family.
//   - A default route without a gateway goes through the gateway of the
//     result's IP of its family (Via).
//   - The pod's default route is held by the attachment with an IPv4 default
//     route, else the one with an IPv6 default route, else the cluster
//     network (Holder).
//   - Each family has at most one default-route request (Requests).
//
// A request is applied twice: in the CNI results, so the runtime is told the
// truth (ApplyToResults), and in the pod's network namespace, where the
// default routes of the requested family are replaced by one via the
// requested gateway (ApplyToNetns). Each IP family is handled on its own, so
// a pod can take its IPv4 default route from one network and keep its IPv6
// one on the cluster network.
package gateway
