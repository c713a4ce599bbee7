package devices

import (
	"context"
	"errors"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	resourceapi "k8s.io/api/resource/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
)

// The ResourceSlice device attributes that make a DRA device a network
// device: the resource a NAD's ResourceNameKey annotation names, and the ID
// its plugin gets as deviceID. Multus 4.3 reads the same two.
const (
	ResourceNameAttribute resourceapi.QualifiedName = "k8s.cni.cncf.io/resourceName"
	DeviceIDAttribute     resourceapi.QualifiedName = "k8s.cni.cncf.io/deviceID"
)

// ErrNetworkDataUnsupported says the API server dropped the network data
// written into a ResourceClaim's status: its DRAResourceClaimDeviceStatus
// feature gate is off.
var ErrNetworkDataUnsupported = errors.New("the API server does not keep ResourceClaim status.devices (feature gate DRAResourceClaimDeviceStatus is off)")

// Claims lists the network devices in a pod's allocated ResourceClaims and
// records what became of them in the claims' status.
type Claims struct {
	Client kubernetes.Interface
}

var _ Lister = (*Claims)(nil)

// Devices implements Lister: the devices of the pod's claims that carry
// ResourceNameAttribute. A claim that is not allocated yet is an error: the
// pod cannot have started. A pod without claims costs no API call.
func (c *Claims) Devices(ctx context.Context, pod *corev1.Pod) ([]Device, error) {
	names, err := claimNames(pod)
	if err != nil {
		return nil, err
	}
	cache := sliceCache{client: c.Client, byDriver: map[string][]resourceapi.ResourceSlice{}}
	var out []Device
	for _, name := range names {
		claim, err := c.Client.ResourceV1().ResourceClaims(pod.Namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("get ResourceClaim %s/%s of pod %s/%s: %w", pod.Namespace, name, pod.Namespace, pod.Name, err)
		}
		devs, err := claimDevices(ctx, claim, &cache)
		if err != nil {
			return nil, fmt.Errorf("pod %s/%s: %w", pod.Namespace, pod.Name, err)
		}
		out = append(out, devs...)
	}
	return out, nil
}

// claimNames are the names of the ResourceClaims a pod uses: those its spec
// names, those generated from its templates (pod status), and the one the
// scheduler made for its DRA-backed extended resources.
func claimNames(pod *corev1.Pod) ([]string, error) {
	var names []string
	add := func(name string) {
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	for _, pc := range pod.Spec.ResourceClaims {
		switch {
		case pc.ResourceClaimName != nil:
			add(*pc.ResourceClaimName)
		case pc.ResourceClaimTemplateName != nil:
			name, found := generatedClaimName(pod, pc.Name)
			if !found {
				return nil, fmt.Errorf("pod %s/%s: the ResourceClaim for spec.resourceClaims %q has not been generated yet", pod.Namespace, pod.Name, pc.Name)
			}
			if name != "" {
				add(name)
			}
		}
	}
	if ext := pod.Status.ExtendedResourceClaimStatus; ext != nil && ext.ResourceClaimName != "" {
		add(ext.ResourceClaimName)
	}
	return names, nil
}

// generatedClaimName looks up status.resourceClaimStatuses. An entry
// without a claim name means no claim was needed: "" and found.
func generatedClaimName(pod *corev1.Pod, podClaim string) (name string, found bool) {
	for _, s := range pod.Status.ResourceClaimStatuses {
		if s.Name != podClaim {
			continue
		}
		if s.ResourceClaimName == nil {
			return "", true
		}
		return *s.ResourceClaimName, true
	}
	return "", false
}

// claimDevices lists the network devices allocated in claim.
func claimDevices(ctx context.Context, claim *resourceapi.ResourceClaim, cache *sliceCache) ([]Device, error) {
	if claim.Status.Allocation == nil {
		return nil, fmt.Errorf("ResourceClaim %s/%s is not allocated yet", claim.Namespace, claim.Name)
	}
	var out []Device
	for _, r := range claim.Status.Allocation.Devices.Results {
		if r.AdminAccess != nil && *r.AdminAccess {
			// Admin access does not give the pod the device: another pod
			// may use it, so it is not the pod's to move into its netns.
			continue
		}
		cd := ClaimDevice{Namespace: claim.Namespace, Name: claim.Name, Driver: r.Driver, Pool: r.Pool, Device: r.Device}
		dev, err := cache.device(ctx, r.Driver, r.Pool, r.Device)
		if err != nil {
			return nil, fmt.Errorf("ResourceClaim %s/%s: %w", claim.Namespace, claim.Name, err)
		}
		resource, ok := stringAttribute(dev, ResourceNameAttribute)
		if !ok {
			continue // not a network device
		}
		id, ok := stringAttribute(dev, DeviceIDAttribute)
		if !ok {
			return nil, fmt.Errorf("ResourceClaim %s/%s: device %s/%s/%s has attribute %s=%s but no string attribute %s",
				claim.Namespace, claim.Name, r.Driver, r.Pool, r.Device, ResourceNameAttribute, resource, DeviceIDAttribute)
		}
		out = append(out, Device{Resource: resource, ID: id, Claim: &cd})
	}
	return out, nil
}

func stringAttribute(dev *resourceapi.Device, name resourceapi.QualifiedName) (string, bool) {
	a, ok := dev.Attributes[name]
	if !ok || a.StringValue == nil || *a.StringValue == "" {
		return "", false
	}
	return *a.StringValue, true
}

// sliceCache lists the ResourceSlices of each driver once.
type sliceCache struct {
	client   kubernetes.Interface
	byDriver map[string][]resourceapi.ResourceSlice
}

// device finds a device in the newest generation of its pool.
func (s *sliceCache) device(ctx context.Context, driver, pool, name string) (*resourceapi.Device, error) {
	all, err := s.list(ctx, driver)
	if err != nil {
		return nil, err
	}
	// Slices of an older generation of the pool are stale: the driver is
	// replacing them.
	newest, seen := int64(0), false
	for _, sl := range all {
		if sl.Spec.Pool.Name == pool && (!seen || sl.Spec.Pool.Generation > newest) {
			newest, seen = sl.Spec.Pool.Generation, true
		}
	}
	for i := range all {
		sl := &all[i]
		if sl.Spec.Pool.Name != pool || sl.Spec.Pool.Generation != newest {
			continue
		}
		for j := range sl.Spec.Devices {
			if sl.Spec.Devices[j].Name == name {
				return &sl.Spec.Devices[j], nil
			}
		}
	}
	return nil, fmt.Errorf("device %s/%s/%s is in no ResourceSlice of driver %s", driver, pool, name, driver)
}

// list lists the driver's ResourceSlices. The API server filters on
// spec.driver; checking again keeps a client that ignores field selectors
// (the fake clientset) honest.
func (s *sliceCache) list(ctx context.Context, driver string) ([]resourceapi.ResourceSlice, error) {
	if cached, ok := s.byDriver[driver]; ok {
		return cached, nil
	}
	list, err := s.client.ResourceV1().ResourceSlices().List(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector(resourceapi.ResourceSliceSelectorDriver, driver).String(),
	})
	if err != nil {
		return nil, fmt.Errorf("list ResourceSlices of driver %s: %w", driver, err)
	}
	var own []resourceapi.ResourceSlice
	for _, sl := range list.Items {
		if sl.Spec.Driver == driver {
			own = append(own, sl)
		}
	}
	s.byDriver[driver] = own
	return own, nil
}

// NetworkData is what became of a claimed device in the pod: the
// status.devices[].networkData of its ResourceClaim.
type NetworkData struct {
	InterfaceName string
	// IPs in CIDR notation, canonical ("192.0.2.5/24", "2001:db8::5/64"):
	// the API server rejects anything else.
	IPs             []string
	HardwareAddress string
}

// ConditionReady is the type of the condition braid sets on each claimed
// device it configured (KEP-4817): True with the interface it became,
// False with the reason it did not.
const ConditionReady = "Ready"

// The reasons of the Ready condition.
const (
	ReasonConfigured   = "InterfaceConfigured"
	ReasonAttachFailed = "AttachFailed"
	// ReasonRemoved: hot-plug took the device's network off the running
	// pod; the device is back with its driver.
	ReasonRemoved = "InterfaceRemoved"
)

// DeviceStatus is what braid reports of a claimed device: the network data
// of the interface it became (nil when it did not become one) and its
// Ready condition.
type DeviceStatus struct {
	Network *NetworkData
	Ready   bool
	Reason  string
	Message string
}

// RecordDeviceStatus writes st into the status.devices entry of dev in its
// ResourceClaim: the network data (none when st has none) and the Ready
// condition, keeping the entry's other conditions, its driver data and the
// other entries. It returns an error wrapping ErrNetworkDataUnsupported
// when the API server dropped what was written.
func (c *Claims) RecordDeviceStatus(ctx context.Context, dev ClaimDevice, st DeviceStatus) error {
	claims := c.Client.ResourceV1().ResourceClaims(dev.Namespace)
	var stored *resourceapi.ResourceClaim
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		claim, err := claims.Get(ctx, dev.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if err := setDeviceStatus(claim, dev, st); err != nil {
			return err
		}
		stored, err = claims.UpdateStatus(ctx, claim, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("record status of device %s/%s/%s in ResourceClaim %s/%s: %w", dev.Driver, dev.Pool, dev.Device, dev.Namespace, dev.Name, err)
	}
	share, _ := allocatedShareID(stored, dev)
	i := deviceStatusIndex(stored, dev, share)
	if i < 0 || (st.Network != nil && stored.Status.Devices[i].NetworkData == nil) {
		return fmt.Errorf("record status of device %s/%s/%s in ResourceClaim %s/%s: %w", dev.Driver, dev.Pool, dev.Device, dev.Namespace, dev.Name, ErrNetworkDataUnsupported)
	}
	return nil
}

// setDeviceStatus sets st in claim's status.devices entry of dev, adding
// the entry if there is none. The entry's key must be an allocated device,
// share included: the API server validates that.
func setDeviceStatus(claim *resourceapi.ResourceClaim, dev ClaimDevice, st DeviceStatus) error {
	share, allocated := allocatedShareID(claim, dev)
	if !allocated {
		return fmt.Errorf("device %s/%s/%s is not allocated in the claim", dev.Driver, dev.Pool, dev.Device)
	}
	i := deviceStatusIndex(claim, dev, share)
	if i < 0 {
		claim.Status.Devices = append(claim.Status.Devices, resourceapi.AllocatedDeviceStatus{Driver: dev.Driver, Pool: dev.Pool, Device: dev.Device, ShareID: share})
		i = len(claim.Status.Devices) - 1
	}
	entry := &claim.Status.Devices[i]
	entry.NetworkData = nil // a device that became no interface has none
	if st.Network != nil {
		entry.NetworkData = &resourceapi.NetworkDeviceData{InterfaceName: st.Network.InterfaceName, IPs: st.Network.IPs, HardwareAddress: st.Network.HardwareAddress}
	}
	ready := metav1.ConditionFalse
	if st.Ready {
		ready = metav1.ConditionTrue
	}
	meta.SetStatusCondition(&entry.Conditions, metav1.Condition{
		Type: ConditionReady, Status: ready, Reason: st.Reason, Message: st.Message, ObservedGeneration: claim.Generation,
	})
	return nil
}

// allocatedShareID finds dev in the claim's allocation. share is the share
// of the device the claim got (consumable capacity), nil for all of it.
func allocatedShareID(claim *resourceapi.ResourceClaim, dev ClaimDevice) (share *string, allocated bool) {
	if claim == nil || claim.Status.Allocation == nil {
		return nil, false
	}
	for _, r := range claim.Status.Allocation.Devices.Results {
		if r.Driver != dev.Driver || r.Pool != dev.Pool || r.Device != dev.Device {
			continue
		}
		if r.ShareID == nil {
			return nil, true
		}
		id := string(*r.ShareID)
		return &id, true
	}
	return nil, false
}

// deviceStatusIndex is the index of dev's entry in status.devices, -1 if
// there is none.
func deviceStatusIndex(claim *resourceapi.ResourceClaim, dev ClaimDevice, share *string) int {
	if claim == nil {
		return -1
	}
	for i, s := range claim.Status.Devices {
		if s.Driver == dev.Driver && s.Pool == dev.Pool && s.Device == dev.Device && ptrEqual(s.ShareID, share) {
			return i
		}
	}
	return -1
}

func ptrEqual(a, b *string) bool {
	return (a == nil && b == nil) || (a != nil && b != nil && *a == *b)
}
