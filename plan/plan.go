package plan

import (
	"encoding/json"
	"fmt"
	"net"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/braid-cni/braid/devices"
	"github.com/braid-cni/braid/gateway"
	"github.com/braid-cni/braid/status"
)

// Version is the journal format version this package writes.
const Version = 1

// Plan is everything braid does for one container, in order.
type Plan struct {
	Version     int          `json:"version"`
	ContainerID string       `json:"containerID"`
	NetNS       string       `json:"netns,omitempty"`
	IfName      string       `json:"ifName"` // the runtime's CNI_IFNAME
	Args        [][2]string  `json:"cniArgs,omitempty"`
	Pod         PodRef       `json:"pod"`
	Attachments []Attachment `json:"attachments"`
	// Pluggable says Build marked the attachments the pod's networks
	// annotation chose (Attachment.Selected): only such a plan can be
	// changed by hot-plug. Plans journaled before the mark existed lack it.
	Pluggable bool `json:"pluggable,omitempty"`
	// DefaultRoutes are the attachments' default-route requests, checked
	// against each other and computed once, by Build: what ADD applies and
	// braidctl explain prints. Plans journaled before this field existed
	// have none; RouteRequests covers them.
	DefaultRoutes []gateway.Request `json:"defaultRoutes,omitempty"`
}

// PodRef names the pod (status.PodRef, its one owner).
type PodRef = status.PodRef

// Attachment is one network on one interface.
type Attachment struct {
	IfName  string `json:"ifName"`
	Network string `json:"network"` // "namespace/name" for a NAD, else the config's name
	// Cluster marks the cluster network (CNI_IFNAME, usually eth0).
	Cluster bool `json:"cluster,omitempty"`
	// Selected marks a network of the pod's networks annotation, as
	// opposed to the cluster network, inline delegates and
	// defaultNetworks, which hot-plug never touches.
	Selected bool `json:"selected,omitempty"`
	// Parameters are what the annotation's selection asked of this
	// attachment beyond its network and interface (annotations.Selection's
	// Parameters): hot-plug makes the attachment again when the pod asks
	// for it with others. Attachments journaled before this field existed
	// have none, and are never made again for their parameters.
	Parameters json.RawMessage `json:"parameters,omitempty"`
	// Config is the delegate config exactly as it will be run.
	Config json.RawMessage `json:"config"`
	// CapabilityArgs go to the plugins of the chain that declare them.
	CapabilityArgs map[string]any `json:"capabilityArgs,omitempty"`
	// DefaultRoute lists the gateways the pod asked for on this attachment.
	DefaultRoute []net.IP `json:"defaultRoute,omitempty"`
	// Device is the device a device-backed network was given.
	Device *Device `json:"device,omitempty"`
	// Result is filled in after a successful ADD.
	Result json.RawMessage `json:"result,omitempty"`
}

// RouteRequests returns the plan's default-route requests: DefaultRoutes,
// or, for a plan that does not carry them (journaled by an older braid, or
// put together by hand), the ones its attachments ask for. Two requests for
// one family are a CNI error with code 7.
func (p *Plan) RouteRequests() ([]gateway.Request, error) {
	if p.DefaultRoutes != nil {
		return p.DefaultRoutes, nil
	}
	return routeRequests(p.Attachments)
}

// routeRequests turns the attachments' "default-route" lists into requests.
func routeRequests(atts []Attachment) ([]gateway.Request, error) {
	ifNames := make([]string, len(atts))
	gws := make([][]net.IP, len(atts))
	for i, a := range atts {
		ifNames[i], gws[i] = a.IfName, a.DefaultRoute
	}
	reqs, err := gateway.Requests(ifNames, gws)
	if err != nil {
		return nil, types.NewError(types.ErrInvalidNetworkConfig, "default-route", err.Error())
	}
	return reqs, nil
}

// Device is an allocated device and the device-info files that go with it.
// ID is empty when the plan was built without a device source (braidctl
// explain away from the node).
type Device struct {
	devices.Device
	// PluginInfoFile is the device plugin's device-info file, copied to
	// InfoFile before the delegate runs.
	PluginInfoFile string `json:"pluginInfoFile,omitempty"`
	// InfoFile is the delegate's CNIDeviceInfoFile; braid removes it at DEL.
	InfoFile string `json:"infoFile,omitempty"`
}

// Marshal encodes a plan for the journal.
func (p *Plan) Marshal() ([]byte, error) {
	data, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("encode plan for container %s: %w", p.ContainerID, err)
	}
	return data, nil
}

// Unmarshal decodes a journaled plan. A plan of another version, or one that
// does not decode, is an error: the caller falls back rather than guess.
func Unmarshal(data []byte) (*Plan, error) {
	var p Plan
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, fmt.Errorf("decode plan: %w", err)
	}
	if p.Version != Version {
		return nil, fmt.Errorf("decode plan: version %d, want %d", p.Version, Version)
	}
	if p.ContainerID == "" {
		return nil, fmt.Errorf("decode plan: no container ID")
	}
	for i, a := range p.Attachments {
		if a.IfName == "" || len(a.Config) == 0 {
			return nil, fmt.Errorf("decode plan: attachment %d has no interface or config", i)
		}
	}
	return &p, nil
}
