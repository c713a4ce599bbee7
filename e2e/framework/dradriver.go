package framework

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc"
	resourceapi "k8s.io/api/resource/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/dynamic-resource-allocation/kubeletplugin"
	"k8s.io/dynamic-resource-allocation/resourceslice"
	registerapi "k8s.io/kubelet/pkg/apis/pluginregistration/v1"
)

// The ResourceSlice device attributes that make a DRA device a network
// device for braid (see devices.ResourceNameAttribute and
// devices.DeviceIDAttribute, which the framework does not import).
const (
	draResourceNameAttribute resourceapi.QualifiedName = "k8s.cni.cncf.io/resourceName"
	draDeviceIDAttribute     resourceapi.QualifiedName = "k8s.cni.cncf.io/deviceID"

	// draStartTimeout bounds the kubelet's registration of the driver and
	// the publication of its ResourceSlice; draStopTimeout the deletion of
	// the slice.
	draStartTimeout = 30 * time.Second
	draStopTimeout  = 30 * time.Second
)

// DRADevice is a device a DRADriver publishes: Name in the ResourceSlice,
// with string attributes k8s.cni.cncf.io/resourceName = ResourceName and
// k8s.cni.cncf.io/deviceID = DeviceID.
type DRADevice struct {
	Name, ResourceName, DeviceID string
}

// DRADriverOptions configures StartDRADriver.
type DRADriverOptions struct {
	// Driver is the driver name, a DNS subdomain, e.g. "net.braid.test".
	Driver string
	// NodeName is the node whose ResourceSlice the driver publishes; the
	// pool is named after it.
	NodeName string
	Devices  []DRADevice
	// Kube reads ResourceClaims and writes the ResourceSlice.
	Kube kubernetes.Interface
	// RegistrarDir is the kubelet's plugin registration directory, which
	// must exist; default kubeletplugin.KubeletRegistryDir.
	RegistrarDir string
	// PluginDir holds the driver's dra.sock, created if missing; default
	// kubeletplugin.KubeletPluginsDir/<Driver>.
	PluginDir string
}

// DRAClaim is a ResourceClaim the kubelet asked a DRADriver to prepare or
// unprepare.
type DRAClaim struct {
	Namespace, Name string
	UID             types.UID
	// Devices are the names of the driver's devices allocated in the
	// claim; only known at Prepare.
	Devices []string
}

// DRADriver is a DRA kubelet plugin served in-process, for tests: it
// registers with the kubelet, publishes one ResourceSlice of fixed network
// devices for its node, and prepares and unprepares claims without doing
// anything (no CDI devices: the node's containerd needs none), recording
// each call.
type DRADriver struct {
	opts   DRADriverOptions
	helper *kubeletplugin.Helper
	// created are the directories StartDRADriver created, deepest first.
	created []string
	once    sync.Once
	stopErr error

	mu sync.Mutex
	// registration is the kubelet's last NotifyRegistrationStatus,
	// nil before the first (the helper's own copy is not safe to read).
	registration *registerapi.RegistrationStatus
	prepared     []DRAClaim
	unprepared   []DRAClaim
	errs         []error
}

var _ kubeletplugin.DRAPlugin = (*draPlugin)(nil)

// StartDRADriver serves the driver, registers it with the kubelet through
// opts.RegistrarDir and publishes its ResourceSlice. It returns once the
// kubelet has accepted the registration and the slice is in the API. ctx
// bounds the start-up only; the driver runs until Stop. On error nothing
// is left behind.
func StartDRADriver(ctx context.Context, opts DRADriverOptions) (_ *DRADriver, err error) {
	if opts.Driver == "" || opts.NodeName == "" || opts.Kube == nil || len(opts.Devices) == 0 {
		return nil, fmt.Errorf("start DRA driver %q: a driver name, a node name, a client and at least one device are required", opts.Driver)
	}
	if opts.RegistrarDir == "" {
		opts.RegistrarDir = kubeletplugin.KubeletRegistryDir
	}
	if opts.PluginDir == "" {
		opts.PluginDir = filepath.Join(kubeletplugin.KubeletPluginsDir, opts.Driver)
	}
	if _, err := os.Stat(opts.RegistrarDir); err != nil {
		return nil, fmt.Errorf("start DRA driver %s: the kubelet's plugin registration directory: %w", opts.Driver, err)
	}
	d := &DRADriver{opts: opts}
	defer func() {
		if err != nil {
			err = errors.Join(err, d.Stop())
		}
	}()
	if top := TopMissing(opts.PluginDir); top != "" {
		for dir := opts.PluginDir; ; dir = filepath.Dir(dir) {
			d.created = append(d.created, dir)
			if dir == top {
				break
			}
		}
	}
	if err := os.MkdirAll(opts.PluginDir, 0o750); err != nil {
		return nil, fmt.Errorf("start DRA driver %s: create %s: %w", opts.Driver, opts.PluginDir, err)
	}
	// The helper's background work runs until Stop, not until ctx ends.
	d.helper, err = kubeletplugin.Start(context.WithoutCancel(ctx), &draPlugin{d: d},
		kubeletplugin.DriverName(opts.Driver),
		kubeletplugin.NodeName(opts.NodeName),
		kubeletplugin.KubeClient(opts.Kube),
		kubeletplugin.RegistrarDirectoryPath(opts.RegistrarDir),
		kubeletplugin.PluginDataDirectoryPath(opts.PluginDir),
		kubeletplugin.GRPCInterceptor(d.seeRegistration),
		// The test devices have no health to report (WatchHealthStatus).
		kubeletplugin.HealthService(false),
	)
	if err != nil {
		return nil, fmt.Errorf("start DRA driver %s: %w", opts.Driver, err)
	}
	if err := d.helper.PublishResources(ctx, d.resources()); err != nil {
		return nil, fmt.Errorf("DRA driver %s: publish ResourceSlice: %w", opts.Driver, err)
	}
	if err := d.waitStarted(ctx); err != nil {
		return nil, err
	}
	return d, nil
}

// resources is the driver's one pool: its node's devices, in one slice.
func (d *DRADriver) resources() resourceslice.DriverResources {
	var devs []resourceapi.Device
	for _, dev := range d.opts.Devices {
		resourceName, deviceID := dev.ResourceName, dev.DeviceID
		devs = append(devs, resourceapi.Device{Name: dev.Name, Attributes: map[resourceapi.QualifiedName]resourceapi.DeviceAttribute{
			draResourceNameAttribute: {StringValue: &resourceName},
			draDeviceIDAttribute:     {StringValue: &deviceID},
		}})
	}
	return resourceslice.DriverResources{Pools: map[string]resourceslice.Pool{
		d.opts.NodeName: {Slices: []resourceslice.Slice{{Devices: devs}}},
	}}
}

// waitStarted waits until the kubelet has accepted the registration and
// the driver's slice lists all its devices.
func (d *DRADriver) waitStarted(ctx context.Context) error {
	var lastErr error
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, draStartTimeout, true, func(ctx context.Context) (bool, error) {
		d.mu.Lock()
		status := d.registration
		d.mu.Unlock()
		switch {
		case status == nil:
			lastErr = errors.New("the kubelet has not called NotifyRegistrationStatus")
			return false, nil
		case !status.PluginRegistered:
			return false, fmt.Errorf("the kubelet refused the registration: %s", status.Error)
		}
		slices, err := d.slices(ctx)
		if err != nil {
			lastErr = err
			return false, nil
		}
		n := 0
		for _, sl := range slices {
			n += len(sl.Spec.Devices)
		}
		if n != len(d.opts.Devices) {
			lastErr = fmt.Errorf("%d ResourceSlices with %d devices, want %d devices", len(slices), n, len(d.opts.Devices))
			return false, nil
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("start DRA driver %s on node %s: %w (last check: %v; background errors: %v)",
			d.opts.Driver, d.opts.NodeName, err, lastErr, errors.Join(d.Errors()...))
	}
	return nil
}

// seeRegistration intercepts the driver's gRPC calls to keep the
// registration status the kubelet sends.
func (d *DRADriver) seeRegistration(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if status, ok := req.(*registerapi.RegistrationStatus); ok {
		d.mu.Lock()
		d.registration = &registerapi.RegistrationStatus{PluginRegistered: status.PluginRegistered, Error: status.Error}
		d.mu.Unlock()
	}
	return handler(ctx, req)
}

// slices lists the driver's ResourceSlices of its node.
func (d *DRADriver) slices(ctx context.Context) ([]resourceapi.ResourceSlice, error) {
	list, err := d.opts.Kube.ResourceV1().ResourceSlices().List(ctx, metav1.ListOptions{
		FieldSelector: fields.AndSelectors(
			fields.OneTermEqualSelector(resourceapi.ResourceSliceSelectorDriver, d.opts.Driver),
			fields.OneTermEqualSelector(resourceapi.ResourceSliceSelectorNodeName, d.opts.NodeName),
		).String(),
	})
	if err != nil {
		return nil, fmt.Errorf("list ResourceSlices of driver %s on node %s: %w", d.opts.Driver, d.opts.NodeName, err)
	}
	// Checked again for clients that ignore field selectors (fakes).
	return slices.DeleteFunc(list.Items, func(sl resourceapi.ResourceSlice) bool {
		return sl.Spec.Driver != d.opts.Driver || sl.Spec.NodeName == nil || *sl.Spec.NodeName != d.opts.NodeName
	}), nil
}

// Prepared returns the claims of each PrepareResourceClaims call so far,
// in order.
func (d *DRADriver) Prepared() []DRAClaim { return d.recorded(&d.prepared) }

// Unprepared returns the claims of each UnprepareResourceClaims call so
// far, in order.
func (d *DRADriver) Unprepared() []DRAClaim { return d.recorded(&d.unprepared) }

// Errors returns the errors the helper reported in the background, such as
// a failed ResourceSlice update.
func (d *DRADriver) Errors() []error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.errs)
}

func (d *DRADriver) recorded(claims *[]DRAClaim) []DRAClaim {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]DRAClaim, len(*claims))
	for i, c := range *claims {
		c.Devices = slices.Clone(c.Devices)
		out[i] = c
	}
	return out
}

// Stop stops serving, which unregisters the driver, deletes its
// ResourceSlices and removes its sockets and the directories it created.
// It is safe to call twice; the second call returns the first's error.
func (d *DRADriver) Stop() error {
	d.once.Do(func() {
		d.helper.Stop() // nil-safe; closing the listeners removes the sockets
		ctx, cancel := context.WithTimeout(context.Background(), draStopTimeout)
		defer cancel()
		errs := []error{d.deleteSlices(ctx)}
		for _, sock := range []string{
			filepath.Join(d.opts.RegistrarDir, d.opts.Driver+"-reg.sock"),
			filepath.Join(d.opts.PluginDir, "dra.sock"),
		} {
			if err := os.Remove(sock); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, fmt.Errorf("DRA driver %s: %w", d.opts.Driver, err))
			}
		}
		for i, dir := range d.created {
			remove := os.Remove // an ancestor only if empty: others may use it
			if i == 0 {
				remove = os.RemoveAll // the driver's own
			}
			if err := remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, fmt.Errorf("DRA driver %s: remove %s: %w", d.opts.Driver, dir, err))
			}
		}
		d.stopErr = errors.Join(errs...)
	})
	return d.stopErr
}

// deleteSlices deletes the driver's ResourceSlices of its node and waits
// until they are gone. The kubelet, which wipes the slices of a driver that
// went away, may get there first.
func (d *DRADriver) deleteSlices(ctx context.Context) error {
	var lastErr error
	err := wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		var left []resourceapi.ResourceSlice
		left, lastErr = d.slices(ctx)
		if lastErr != nil {
			return false, nil
		}
		for _, sl := range left {
			err := d.opts.Kube.ResourceV1().ResourceSlices().Delete(ctx, sl.Name, metav1.DeleteOptions{})
			if err != nil && !apierrors.IsNotFound(err) {
				lastErr = fmt.Errorf("delete ResourceSlice %s: %w", sl.Name, err)
			}
		}
		return len(left) == 0, nil
	})
	if err != nil {
		return fmt.Errorf("DRA driver %s: delete its ResourceSlices: %w (last: %v)", d.opts.Driver, err, lastErr)
	}
	return nil
}

// draPlugin is the DRAPlugin the helper calls for a DRADriver.
type draPlugin struct{ d *DRADriver }

// PrepareResourceClaims records each claim with the driver's devices in
// it and prepares it without CDI devices. A device of the driver that it
// does not publish fails that claim.
func (p *draPlugin) PrepareResourceClaims(_ context.Context, claims []*resourceapi.ResourceClaim) (map[types.UID]kubeletplugin.PrepareResult, error) {
	out := map[types.UID]kubeletplugin.PrepareResult{}
	for _, claim := range claims {
		rec := DRAClaim{Namespace: claim.Namespace, Name: claim.Name, UID: claim.UID}
		var res kubeletplugin.PrepareResult
		for _, r := range claim.Status.Allocation.Devices.Results { // the helper checked the allocation
			if r.Driver != p.d.opts.Driver {
				continue
			}
			rec.Devices = append(rec.Devices, r.Device)
			if r.Pool != p.d.opts.NodeName || !slices.ContainsFunc(p.d.opts.Devices, func(dev DRADevice) bool { return dev.Name == r.Device }) {
				res.Err = fmt.Errorf("DRA driver %s: claim %s/%s: device %s/%s is not the driver's", p.d.opts.Driver, claim.Namespace, claim.Name, r.Pool, r.Device)
				continue
			}
			res.Devices = append(res.Devices, kubeletplugin.Device{Requests: []string{r.Request}, PoolName: r.Pool, DeviceName: r.Device})
		}
		if res.Err != nil {
			res.Devices = nil
		}
		out[claim.UID] = res
		p.d.mu.Lock()
		p.d.prepared = append(p.d.prepared, rec)
		p.d.mu.Unlock()
	}
	return out, nil
}

// UnprepareResourceClaims records each claim; there is nothing to undo.
func (p *draPlugin) UnprepareResourceClaims(_ context.Context, claims []kubeletplugin.NamespacedObject) (map[types.UID]error, error) {
	out := map[types.UID]error{}
	p.d.mu.Lock()
	defer p.d.mu.Unlock()
	for _, c := range claims {
		p.d.unprepared = append(p.d.unprepared, DRAClaim{Namespace: c.Namespace, Name: c.Name, UID: c.UID})
		out[c.UID] = nil
	}
	return out, nil
}

// WatchHealthStatus is never called: StartDRADriver turns the health
// service off, the test devices having no health to report.
func (p *draPlugin) WatchHealthStatus(context.Context, chan<- kubeletplugin.DeviceHealthReport) error {
	return kubeletplugin.ErrHealthNotSupported
}

// HandleError records a background error: every error is worth a test's
// failure report, none is worth stopping the driver.
func (p *draPlugin) HandleError(_ context.Context, err error, msg string) {
	p.d.mu.Lock()
	defer p.d.mu.Unlock()
	p.d.errs = append(p.d.errs, fmt.Errorf("DRA driver %s: %s: %w", p.d.opts.Driver, msg, err))
}
