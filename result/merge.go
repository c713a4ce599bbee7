package result

import (
	"fmt"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
)

// Merge combines the results of every attachment of a pod, cluster network
// first (parts[0]), into one result at cniVersion, which must be 0.3.0,
// 0.3.1, 0.4.0, 1.0.0 or 1.1.0 (older versions cannot list interfaces):
//   - Interfaces: every interface of every part, in order.
//   - IPs: every IP of every part, parts[0]'s first; each IP's interface
//     index is shifted by the number of interfaces listed before its part
//     (an IP without an interface index keeps none).
//   - Routes: every route of every part, in order.
//   - DNS: parts[0]'s.
//
// Parts may be of any result version. Merge does not modify them.
func Merge(cniVersion string, parts []types.Result) (types.Result, error) {
	if !listsInterfaces(cniVersion) {
		return nil, fmt.Errorf("merge results: cniVersion %q is not one of 0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0", cniVersion)
	}

	merged := &current.Result{CNIVersion: current.ImplementedSpecVersion}
	for i, part := range parts {
		if part == nil {
			return nil, fmt.Errorf("merge results: part %d is nil", i)
		}
		// The conversion may return part itself or share its slices, so
		// appendPart copies every element it takes.
		r, err := current.NewResultFromResult(part)
		if err != nil {
			return nil, fmt.Errorf("merge results: convert part %d (version %q): %w", i, part.Version(), err)
		}
		if i == 0 {
			merged.DNS = *r.DNS.Copy()
		}
		appendPart(merged, r)
	}

	out, err := merged.GetAsVersion(cniVersion)
	if err != nil {
		return nil, fmt.Errorf("merge results: convert to version %s: %w", cniVersion, err)
	}
	return out, nil
}

// appendPart appends copies of part's interfaces, IPs and routes to merged,
// renumbering the IPs' interface indexes past the interfaces already there.
func appendPart(merged, part *current.Result) {
	offset := len(merged.Interfaces)
	for _, iface := range part.Interfaces {
		merged.Interfaces = append(merged.Interfaces, iface.Copy())
	}
	for _, ip := range part.IPs {
		ip = ip.Copy()
		if ip != nil && ip.Interface != nil {
			ip.Interface = current.Int(*ip.Interface + offset)
		}
		merged.IPs = append(merged.IPs, ip)
	}
	for _, route := range part.Routes {
		merged.Routes = append(merged.Routes, route.Copy())
	}
}

// listsInterfaces reports whether results of version v have an interfaces
// list, which a merged result needs to say which network each IP is on.
func listsInterfaces(v string) bool {
	switch v {
	case "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0":
		return true
	}
	return false
}
