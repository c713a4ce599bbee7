package annotations

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"unicode"
	"unicode/utf8"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

// maxIfNameLen is the longest interface name Linux accepts (IFNAMSIZ less the
// terminating NUL).
const maxIfNameLen = 15

// FieldError describes one invalid value in one element of a parsed list.
type FieldError struct {
	Index   int    // 1-based position in the list
	Element string // Selection.String() of the element
	Field   string // JSON key, e.g. "interface"
	Reason  string // what is wrong, starting with the offending value
}

// Error reads like `network "ns/foo@net1" (element 2): interface "lo" is reserved`.
func (e *FieldError) Error() string {
	return fmt.Sprintf("network %q (element %d): %s %s", e.Element, e.Index, e.Field, e.Reason)
}

// Validate checks the values of a parsed list before anything is created.
// runtimeIfName is the interface the runtime asked for (CNI_IFNAME); no
// element may request it. Every problem found is returned, joined with
// errors.Join, each as a *FieldError (past maxReported, one more error
// counts the rest); nil means the list is usable.
func Validate(sels []*Selection, runtimeIfName string) error {
	v := &validator{
		runtimeIfName: runtimeIfName,
		ifaces:        make(map[string]int),
		gateways:      make(map[bool]gatewayOwner),
		sels:          sels,
	}
	for i, sel := range sels {
		v.element(i+1, sel)
	}
	if n := len(v.errs) - maxReported; n > 0 {
		// The list is the pod author's; the message goes into events, logs
		// and the runtime's error.
		v.errs = append(v.errs[:maxReported:maxReported], fmt.Errorf("and %d more problems", n))
	}
	return errors.Join(v.errs...)
}

// maxReported bounds the problems Validate returns; the rest are counted.
const maxReported = 16

// CheckCount refuses more than limit secondary networks for one pod
// (braid's maxNetworksPerPod): each costs delegate calls, journal space and
// DEL time, and the annotation's size is a namespace user's to choose.
func CheckCount(count, limit int) error {
	if count > limit {
		return fmt.Errorf("%d networks requested, more than the %d a pod may have (maxNetworksPerPod)", count, limit)
	}
	return nil
}

// validator holds what one Validate call has seen so far, for the checks that
// span the whole list.
type validator struct {
	runtimeIfName string
	sels          []*Selection
	ifaces        map[string]int        // interface name -> index of first user
	gateways      map[bool]gatewayOwner // keyed by "is IPv4"
	errs          []error
}

// gatewayOwner records which element set the default route of a family.
type gatewayOwner struct {
	index int
	ip    net.IP
}

func (v *validator) element(index int, sel *Selection) {
	if sel == nil {
		v.errs = append(v.errs, &FieldError{Index: index, Element: sel.String(), Field: "element", Reason: "is null"})
		return
	}
	add := func(field, reason string) {
		if reason != "" {
			v.errs = append(v.errs, &FieldError{Index: index, Element: sel.String(), Field: field, Reason: reason})
		}
	}
	add("name", checkName(sel.Name))
	add("namespace", checkNamespace(sel.Namespace))
	add("interface", v.checkInterface(index, sel.InterfaceRequest))
	for _, ip := range sel.IPRequest {
		add("ips", checkIPOrCIDR(ip))
	}
	add("mac", checkHardwareAddr(sel.MacRequest, 6))
	add("infiniband-guid", checkHardwareAddr(sel.InfinibandGUIDRequest, 8))
	for _, gw := range sel.GatewayRequest {
		add("default-route", v.checkGateway(index, gw))
	}
	for i, pm := range sel.PortMappingsRequest {
		add("portMappings", checkPortMapping(i+1, pm))
	}
	add("bandwidth", checkBandwidth(sel.BandwidthRequest))
	add("ipam-claim-reference", checkIPAMClaim(sel.IPAMClaimReference))
	if strings.IndexFunc(sel.DeviceID, unicode.IsSpace) >= 0 {
		add("deviceID", fmt.Sprintf("%q contains whitespace", sel.DeviceID))
	}
}

func checkName(name string) string {
	if name == "" {
		return "is required"
	}
	if msgs := validation.IsDNS1123Subdomain(name); len(msgs) > 0 {
		return fmt.Sprintf("%q is not a DNS-1123 subdomain: %s", name, strings.Join(msgs, "; "))
	}
	return ""
}

func checkNamespace(namespace string) string {
	if namespace == "" {
		return "is required"
	}
	if msgs := validation.IsDNS1123Label(namespace); len(msgs) > 0 {
		return fmt.Sprintf("%q is not a DNS-1123 label: %s", namespace, strings.Join(msgs, "; "))
	}
	return ""
}

// checkInterface applies the kernel's rules for link names plus braid's own:
// "lo" and the runtime's interface are taken, and no two elements may ask for
// the same name. An empty name means "pick one for me" and is fine.
func (v *validator) checkInterface(index int, name string) string {
	if name == "" {
		return ""
	}
	if reason := checkIfNameSyntax(name); reason != "" {
		return reason
	}
	switch {
	case name == "lo":
		return fmt.Sprintf("%q is reserved", name)
	case v.runtimeIfName != "" && name == v.runtimeIfName:
		return fmt.Sprintf("%q is the pod's main interface (CNI_IFNAME)", name)
	}
	if first, seen := v.ifaces[name]; seen {
		return fmt.Sprintf("%q is already used by element %d (%q)", name, first, v.sels[first-1].String())
	}
	v.ifaces[name] = index
	return ""
}

// checkIfNameSyntax checks what the kernel would refuse. It also refuses
// invalid UTF-8 and control characters, which could not survive a trip
// through JSON or a log line intact.
func checkIfNameSyntax(name string) string {
	switch {
	case len(name) > maxIfNameLen:
		return fmt.Sprintf("%q is longer than %d bytes", name, maxIfNameLen)
	case name == "." || name == "..":
		return fmt.Sprintf("%q is not a valid interface name", name)
	case strings.ContainsAny(name, "/:"):
		return fmt.Sprintf("%q contains '/' or ':'", name)
	case strings.IndexFunc(name, unicode.IsSpace) >= 0:
		return fmt.Sprintf("%q contains whitespace", name)
	case !utf8.ValidString(name):
		return fmt.Sprintf("%q is not valid UTF-8", name)
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return fmt.Sprintf("%q contains a control character", name)
	}
	return ""
}

func checkIPOrCIDR(s string) string {
	if _, _, err := net.ParseCIDR(s); err == nil {
		return ""
	}
	if net.ParseIP(s) != nil {
		return ""
	}
	return fmt.Sprintf("%q is neither an IP address nor a CIDR", s)
}

// checkHardwareAddr checks a MAC address (size 6) or an InfiniBand GUID
// (size 8). Empty means "not requested".
func checkHardwareAddr(s string, size int) string {
	if s == "" {
		return ""
	}
	hw, err := net.ParseMAC(s)
	if err != nil {
		return fmt.Sprintf("%q is not a hardware address", s)
	}
	if len(hw) != size {
		return fmt.Sprintf("%q is %d bytes long, want %d", s, len(hw), size)
	}
	return ""
}

// checkGateway allows one default route per IP family across the whole list:
// a pod has one routing table, and a second default route for the same family
// would silently lose to the first.
func (v *validator) checkGateway(index int, gw net.IP) string {
	if len(gw) == 0 {
		return `"" is not an IP address`
	}
	if len(gw) != net.IPv4len && len(gw) != net.IPv6len {
		return fmt.Sprintf("%q is not an IP address", gw.String())
	}
	isV4 := gw.To4() != nil
	family := "IPv6"
	if isV4 {
		family = "IPv4"
	}
	if first, seen := v.gateways[isV4]; seen {
		return fmt.Sprintf("%q is a second %s default route; element %d (%q) already sets %q",
			gw.String(), family, first.index, v.sels[first.index-1].String(), first.ip.String())
	}
	v.gateways[isV4] = gatewayOwner{index: index, ip: gw}
	return ""
}

func checkPortMapping(n int, pm *nadv1.PortMapEntry) string {
	if pm == nil {
		return fmt.Sprintf("entry %d is null", n)
	}
	var problems []string
	if pm.HostPort < 1 || pm.HostPort > 65535 {
		problems = append(problems, fmt.Sprintf("hostPort %d is outside 1-65535", pm.HostPort))
	}
	if pm.ContainerPort < 1 || pm.ContainerPort > 65535 {
		problems = append(problems, fmt.Sprintf("containerPort %d is outside 1-65535", pm.ContainerPort))
	}
	switch strings.ToLower(pm.Protocol) {
	case "", "tcp", "udp", "sctp":
	default:
		problems = append(problems, fmt.Sprintf("protocol %q is not tcp, udp or sctp", pm.Protocol))
	}
	if pm.HostIP != "" && net.ParseIP(pm.HostIP) == nil {
		problems = append(problems, fmt.Sprintf("hostIP %q is not an IP address", pm.HostIP))
	}
	if len(problems) == 0 {
		return ""
	}
	return fmt.Sprintf("entry %d: %s", n, strings.Join(problems, ", "))
}

func checkBandwidth(bw *nadv1.BandwidthEntry) string {
	if bw == nil {
		return ""
	}
	var problems []string
	for _, f := range []struct {
		key   string
		value int
	}{
		{"ingressRate", bw.IngressRate},
		{"ingressBurst", bw.IngressBurst},
		{"egressRate", bw.EgressRate},
		{"egressBurst", bw.EgressBurst},
	} {
		if f.value < 0 {
			problems = append(problems, fmt.Sprintf("%s %d is negative", f.key, f.value))
		}
	}
	return strings.Join(problems, ", ")
}

func checkIPAMClaim(ref string) string {
	if ref == "" {
		return ""
	}
	if msgs := validation.IsDNS1123Subdomain(ref); len(msgs) > 0 {
		return fmt.Sprintf("%q is not a DNS-1123 subdomain: %s", ref, strings.Join(msgs, "; "))
	}
	return ""
}
