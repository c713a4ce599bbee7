package annotations

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
)

// Annotation keys.
const (
	// NetworksKey holds the list of secondary networks for a pod.
	NetworksKey = nadv1.NetworkAttachmentAnnot
	// DefaultNetworkKey names a network that replaces the cluster default
	// network for one pod. The key keeps Multus's spelling so existing pods
	// work unchanged.
	DefaultNetworkKey = "v1.multus-cni.io/default-network"
	// SkipDefaultNetworksKey, "true" on a pod, leaves out braid's
	// defaultNetworks for that pod (multus-cni #1187); "false" or absent
	// keeps them. braid's own domain: Multus has no such annotation.
	SkipDefaultNetworksKey = "braid-cni.io/skip-default-networks"
)

// SkipDefaultNetworks reads SkipDefaultNetworksKey from a pod's
// annotations: true only for "true"; a value other than "true" or "false"
// is an error.
func SkipDefaultNetworks(annots map[string]string) (bool, error) {
	switch v, ok := annots[SkipDefaultNetworksKey]; {
	case !ok || v == "false":
		return false, nil
	case v == "true":
		return true, nil
	default:
		return false, fmt.Errorf("annotation %s: %q is neither \"true\" nor \"false\"", SkipDefaultNetworksKey, shorten(v))
	}
}

// PodIfName is the interface Kubernetes runtimes ask for the cluster
// network (CNI_IFNAME): what tools that check an annotation away from the
// node (webhook, lint, explain, braidctl) validate against.
const PodIfName = "eth0"

// excerptLen is how much of a bad annotation value an error repeats.
const excerptLen = 80

// Selection is one element of the networks annotation: the NAD client's
// NetworkSelectionElement plus the multi-net spec's "deviceID" key, which the
// client type lacks.
type Selection struct {
	nadv1.NetworkSelectionElement
	// DeviceID asks for a specific device (for example a PCI address handed
	// out by a device plugin) for this attachment.
	DeviceID string `json:"deviceID,omitempty"`
}

// UnmarshalJSON reads every key of the embedded element and "deviceID".
//
// Without it the embedded type's UnmarshalJSON would be promoted and would
// consume the whole object, so DeviceID would never be read. Empty lists are
// stored as nil: they mean the same as an absent key, and this keeps a
// marshal and parse round trip exact.
func (s *Selection) UnmarshalJSON(b []byte) error {
	var el nadv1.NetworkSelectionElement
	if err := json.Unmarshal(b, &el); err != nil {
		return err
	}
	var extra struct {
		DeviceID string `json:"deviceID"`
	}
	if err := json.Unmarshal(b, &extra); err != nil {
		return err
	}
	if len(el.IPRequest) == 0 {
		el.IPRequest = nil
	}
	if len(el.PortMappingsRequest) == 0 {
		el.PortMappingsRequest = nil
	}
	if len(el.GatewayRequest) == 0 {
		el.GatewayRequest = nil
	}
	*s = Selection{NetworkSelectionElement: el, DeviceID: extra.DeviceID}
	return nil
}

// MarshalJSON writes the embedded element's keys followed by "deviceID".
//
// It does not rely on field promotion, so a marshaler added to the client type
// later cannot silently drop DeviceID.
func (s Selection) MarshalJSON() ([]byte, error) {
	b, err := json.Marshal(&s.NetworkSelectionElement)
	if err != nil {
		return nil, err
	}
	if s.DeviceID == "" {
		return b, nil
	}
	if len(b) < 2 || b[0] != '{' || b[len(b)-1] != '}' {
		return nil, fmt.Errorf("marshal network %q: element is not a JSON object", s.String())
	}
	id, err := json.Marshal(s.DeviceID)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(b)+len(id)+len(`,"deviceID":`))
	out = append(out, b[:len(b)-1]...)
	if len(b) > 2 {
		out = append(out, ',')
	}
	out = append(out, `"deviceID":`...)
	out = append(out, id...)
	return append(out, '}'), nil
}

// Parameters is what the selection asks of its attachment beyond which
// network on which interface: every key but "name", "namespace" and
// "interface", as JSON with sorted keys ("{}" for none). Selections of one
// attachment with equal parameters ask for the same thing, in whichever
// form they were written.
func (s Selection) Parameters() (json.RawMessage, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("parameters of network %q: %w", s.String(), err)
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(b, &keys); err != nil {
		return nil, fmt.Errorf("parameters of network %q: %w", s.String(), err)
	}
	delete(keys, "name")
	delete(keys, "namespace")
	delete(keys, "interface")
	return json.Marshal(keys)
}

// String returns the short form "namespace/name@ifname", leaving out the parts
// that are empty. Errors use it to name an element.
func (s *Selection) String() string {
	if s == nil {
		return "<nil>"
	}
	var b strings.Builder
	if s.Namespace != "" {
		b.WriteString(s.Namespace)
		b.WriteByte('/')
	}
	b.WriteString(s.Name)
	if s.InterfaceRequest != "" {
		b.WriteByte('@')
		b.WriteString(s.InterfaceRequest)
	}
	return b.String()
}

// ParseNetworks parses the value of the networks annotation.
//
// A value that starts with '[' is a JSON list of selection objects; any other
// value is the short form, a comma-separated list of
// "[namespace/]name[@ifname]". An empty value yields no selections. Elements
// without a namespace get defaultNamespace. Only syntax is checked here; call
// Validate for the values.
func ParseNetworks(raw, defaultNamespace string) ([]*Selection, error) {
	value := strings.TrimSpace(raw)
	switch {
	case value == "":
		return nil, nil
	case value[0] == '[':
		return parseJSONList(value, defaultNamespace)
	case value[0] == '{':
		return nil, fmt.Errorf("networks annotation %s: a JSON list of objects is required, not a single object",
			quoteJSON(value))
	default:
		return parseShortForm(value, defaultNamespace)
	}
}

// ParseDefaultNetwork parses the value of the default-network annotation,
// which names exactly one network as "[namespace/]name". An empty value
// yields nil. A missing namespace becomes defaultNamespace.
func ParseDefaultNetwork(raw, defaultNamespace string) (*Selection, error) {
	value := strings.TrimSpace(raw)
	if value == "" {
		return nil, nil
	}
	if strings.Contains(value, ",") {
		return nil, fmt.Errorf("default network %s: exactly one network is allowed", quoteText(value))
	}
	if strings.Contains(value, "@") {
		return nil, fmt.Errorf("default network %s: an interface name is not allowed", quoteText(value))
	}
	namespace, name, err := splitNamespacedName(value)
	if err != nil {
		return nil, fmt.Errorf("default network %s: %w", quoteText(value), err)
	}
	return newSelection(namespace, name, "", defaultNamespace), nil
}

// parseJSONList parses the JSON form. Each element is decoded on its own so
// an error can say which element is wrong.
func parseJSONList(value, defaultNamespace string) ([]*Selection, error) {
	var elems []json.RawMessage
	if err := json.Unmarshal([]byte(value), &elems); err != nil {
		return nil, fmt.Errorf("networks annotation %s: not a valid JSON list: %w", quoteJSON(value), err)
	}
	if len(elems) == 0 {
		return nil, nil
	}
	sels := make([]*Selection, 0, len(elems))
	for i, elem := range elems {
		elem = bytes.TrimSpace(elem)
		if len(elem) == 0 || elem[0] != '{' {
			return nil, fmt.Errorf("networks element %d %s: a JSON object is required", i+1, quoteJSON(string(elem)))
		}
		sel := &Selection{}
		if err := json.Unmarshal(elem, sel); err != nil {
			return nil, fmt.Errorf("networks element %d %s: %w", i+1, quoteJSON(string(elem)), err)
		}
		if sel.Namespace == "" {
			sel.Namespace = defaultNamespace
		}
		sels = append(sels, sel)
	}
	return sels, nil
}

// parseShortForm parses "[namespace/]name[@ifname]" items separated by commas.
func parseShortForm(value, defaultNamespace string) ([]*Selection, error) {
	items := strings.Split(value, ",")
	sels := make([]*Selection, 0, len(items))
	for i, item := range items {
		item = strings.TrimSpace(item)
		if item == "" {
			return nil, fmt.Errorf("short-form item %d of %s is empty", i+1, quoteText(value))
		}
		sel, err := parseShortItem(item, defaultNamespace)
		if err != nil {
			return nil, fmt.Errorf("short-form item %s: %w", quoteText(item), err)
		}
		sels = append(sels, sel)
	}
	return sels, nil
}

// parseShortItem parses one "[namespace/]name[@ifname]" item.
func parseShortItem(item, defaultNamespace string) (*Selection, error) {
	if strings.Count(item, "@") > 1 {
		return nil, errors.New("more than one '@'")
	}
	ref, ifname, hasIf := strings.Cut(item, "@")
	if hasIf && ifname == "" {
		return nil, errors.New("empty interface name after '@'")
	}
	namespace, name, err := splitNamespacedName(ref)
	if err != nil {
		return nil, err
	}
	return newSelection(namespace, name, ifname, defaultNamespace), nil
}

// splitNamespacedName splits "[namespace/]name". The name is required; the
// namespace may be left out, but not written as empty ("/name").
func splitNamespacedName(ref string) (namespace, name string, err error) {
	if strings.Count(ref, "/") > 1 {
		return "", "", errors.New("more than one '/'")
	}
	namespace, name, hasNamespace := strings.Cut(ref, "/")
	if !hasNamespace {
		namespace, name = "", ref
	}
	switch {
	case hasNamespace && namespace == "":
		return "", "", errors.New("empty namespace before '/'")
	case name == "":
		return "", "", errors.New("empty network name")
	}
	return namespace, name, nil
}

func newSelection(namespace, name, ifname, defaultNamespace string) *Selection {
	if namespace == "" {
		namespace = defaultNamespace
	}
	sel := &Selection{}
	sel.Namespace = namespace
	sel.Name = name
	sel.InterfaceRequest = ifname
	return sel
}

// quoteText returns s, shortened, quoted for an error message.
func quoteText(s string) string {
	return fmt.Sprintf("%q", shorten(s))
}

// quoteJSON returns JSON text for an error message: compacted onto one line
// when it is valid, shortened, and quoted with backquotes where possible so
// its own quotes need no escaping.
func quoteJSON(s string) string {
	var buf bytes.Buffer
	if json.Compact(&buf, []byte(s)) == nil {
		s = buf.String()
	}
	return fmt.Sprintf("%#q", shorten(s))
}

// shorten cuts s after excerptLen bytes, on a rune boundary, and marks the
// cut with "...".
func shorten(s string) string {
	if len(s) <= excerptLen {
		return s
	}
	cut := excerptLen
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}
