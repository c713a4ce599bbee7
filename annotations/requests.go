package annotations

// RuntimeRequest is one runtime request of a selection: its key in the
// annotation, the CNI capability it is passed as, and its value.
type RuntimeRequest struct {
	Key        string
	Capability string
	Value      any
}

// RuntimeRequests lists what a selection asks for at runtime, in a fixed
// order: the multi-net spec's mapping of ips, mac, infiniband-guid,
// portMappings, bandwidth and deviceID to capability args.
func (s *Selection) RuntimeRequests() []RuntimeRequest {
	var out []RuntimeRequest
	if len(s.IPRequest) > 0 {
		out = append(out, RuntimeRequest{"ips", "ips", s.IPRequest})
	}
	if s.MacRequest != "" {
		out = append(out, RuntimeRequest{"mac", "mac", s.MacRequest})
	}
	if s.InfinibandGUIDRequest != "" {
		out = append(out, RuntimeRequest{"infiniband-guid", "infinibandGUID", s.InfinibandGUIDRequest})
	}
	if len(s.PortMappingsRequest) > 0 {
		out = append(out, RuntimeRequest{"portMappings", "portMappings", s.PortMappingsRequest})
	}
	if s.BandwidthRequest != nil {
		out = append(out, RuntimeRequest{"bandwidth", "bandwidth", s.BandwidthRequest})
	}
	if s.DeviceID != "" {
		out = append(out, RuntimeRequest{"deviceID", "deviceID", s.DeviceID})
	}
	return out
}
