// Package gateway moves a pod's default route onto a secondary network when
// the pod's networks annotation asks for it ("default-route": ["10.1.1.1"]).
//
// The change is made twice: in the CNI results, so the runtime is told the
// truth, and in the pod's network namespace, where the default routes of the
// requested family are replaced by one via the requested gateway. Each IP
// family is handled on its own, so a pod can take its IPv4 default route from
// one network and keep its IPv6 one on the cluster network.
//
// A default route is recognised by its destination being nil, 0.0.0.0/0 or
// ::/0: current kernels report the default route to netlink with an explicit
// all-zero destination, where older ones left it out.
package gateway
