package framework

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"
)

const (
	// DefaultDevInfoDir is the base directory of the NPWG device-info
	// spec; device plugins write under its dp subdirectory.
	DefaultDevInfoDir = "/var/run/k8s.cni.cncf.io/devinfo"

	// DevicePluginEnv is the variable Allocate sets in the container: the
	// allocated device IDs, comma-joined.
	DevicePluginEnv = "BRAID_TEST_DEVICES"

	kubeletSocketName = "kubelet.sock"
	registerTimeout   = 10 * time.Second
)

// DevicePluginOptions configures StartDevicePlugin.
type DevicePluginOptions struct {
	// Resource is the extended resource advertised, e.g. "braid.test/vf".
	Resource string
	// Devices are the IDs of the devices advertised, all Healthy.
	Devices []string
	// PluginDir holds the kubelet's registration socket (kubelet.sock)
	// and the plugin's own socket; default v1beta1.DevicePluginPath.
	PluginDir string
	// DevInfoDir is the device-info base directory; the plugin writes
	// its files under DevInfoDir/dp. Default DefaultDevInfoDir.
	DevInfoDir string
}

// DevicePlugin is a kubelet device plugin served in-process, for tests:
// it advertises fixed devices, records each Allocate and writes an NPWG
// device-info file per device. It registers again whenever the kubelet
// recreates its registration socket, serving on a new socket if the
// kubelet removed the old one (as a starting kubelet does).
type DevicePlugin struct {
	opts    DevicePluginOptions
	socket  string
	kubelet string
	files   []string // device-info files written
	dirs    []string // directories created for them, deepest first
	ctx     context.Context
	cancel  context.CancelFunc
	watcher *fsnotify.Watcher
	done    chan struct{} // closed when the watch loop returns
	once    sync.Once

	mu         sync.Mutex
	server     *grpc.Server
	allocs     [][]string
	registered os.FileInfo // the kubelet.sock last registered with
}

// StartDevicePlugin writes the device-info files, serves the device plugin
// API on a socket in opts.PluginDir and registers with the kubelet there.
// ctx bounds the start-up only; the plugin runs until Stop. On error
// nothing is left behind.
func StartDevicePlugin(ctx context.Context, opts DevicePluginOptions) (_ *DevicePlugin, err error) {
	if opts.Resource == "" || len(opts.Devices) == 0 {
		return nil, fmt.Errorf("start device plugin %q: a resource and at least one device are required", opts.Resource)
	}
	if opts.PluginDir == "" {
		opts.PluginDir = v1beta1.DevicePluginPath
	}
	if opts.DevInfoDir == "" {
		opts.DevInfoDir = DefaultDevInfoDir
	}
	if opts.PluginDir, err = filepath.Abs(opts.PluginDir); err != nil {
		return nil, fmt.Errorf("start device plugin %s: %w", opts.Resource, err)
	}
	p := &DevicePlugin{
		opts:    opts,
		socket:  filepath.Join(opts.PluginDir, DevicePluginSocketName(opts.Resource)),
		kubelet: filepath.Join(opts.PluginDir, kubeletSocketName),
		done:    make(chan struct{}),
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	defer func() {
		if err != nil {
			p.Stop()
		}
	}()
	if err := p.writeDeviceInfo(); err != nil {
		return nil, err
	}
	// Watch before the first registration so that a kubelet restart in
	// between is not missed.
	if p.watcher, err = fsnotify.NewWatcher(); err != nil {
		return nil, fmt.Errorf("device plugin %s: watch %s: %w", opts.Resource, opts.PluginDir, err)
	}
	if err := p.watcher.Add(opts.PluginDir); err != nil {
		close(p.done)
		return nil, fmt.Errorf("device plugin %s: watch %s: %w", opts.Resource, opts.PluginDir, err)
	}
	go p.watch()
	if err := p.serve(); err != nil {
		return nil, err
	}
	rctx, cancel := context.WithTimeout(ctx, registerTimeout)
	defer cancel()
	if err := p.register(rctx); err != nil {
		return nil, err
	}
	return p, nil
}

// DevicePluginSocketName is the base name of the socket a DevicePlugin
// for resource serves on.
func DevicePluginSocketName(resource string) string {
	safe := strings.Map(func(r rune) rune {
		if r == '.' || r == '_' || r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
			return r
		}
		return '-'
	}, resource)
	return "braid-test-" + safe + ".sock"
}

// DeviceInfoPath returns the device-info file of device id of resource
// under devInfoDir, named as the NPWG device-info spec names a device
// plugin's files.
func DeviceInfoPath(devInfoDir, resource, id string) string {
	name := fmt.Sprintf("%s-%s-device.json", strings.ReplaceAll(resource, "/", "-"), strings.ReplaceAll(id, "/", "-"))
	return filepath.Join(devInfoDir, "dp", name)
}

// Socket returns the path of the socket the plugin serves on.
func (p *DevicePlugin) Socket() string { return p.socket }

// Allocations returns the device IDs of each container request of each
// Allocate call so far, in order.
func (p *DevicePlugin) Allocations() [][]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([][]string, len(p.allocs))
	for i, ids := range p.allocs {
		out[i] = append([]string(nil), ids...)
	}
	return out
}

// Stop stops serving and watching and removes the socket, the device-info
// files and the directories created for them. It is safe to call twice.
func (p *DevicePlugin) Stop() {
	p.once.Do(func() {
		p.cancel()
		if p.watcher != nil {
			_ = p.watcher.Close()
			<-p.done
		}
		p.mu.Lock()
		srv := p.server
		p.server = nil
		p.mu.Unlock()
		if srv != nil {
			srv.Stop()
		}
		_ = os.Remove(p.socket)
		for _, f := range p.files {
			_ = os.Remove(f)
		}
		for _, d := range p.dirs {
			_ = os.Remove(d) // only if empty: others may write there too
		}
	})
}

// writeDeviceInfo writes a pci device-info file per device, with the
// device ID as its PCI address (the test devices are veths named by ID).
func (p *DevicePlugin) writeDeviceInfo() error {
	dir := filepath.Join(p.opts.DevInfoDir, "dp")
	if top := TopMissing(dir); top != "" {
		for d := dir; ; d = filepath.Dir(d) {
			p.dirs = append(p.dirs, d)
			if d == top {
				break
			}
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("device plugin %s: create %s: %w", p.opts.Resource, dir, err)
	}
	for _, id := range p.opts.Devices {
		info := nadv1.DeviceInfo{Type: nadv1.DeviceInfoTypePCI, Version: nadv1.DeviceInfoVersion, Pci: &nadv1.PciDevice{PciAddress: id}}
		data, err := json.Marshal(info)
		if err != nil {
			return fmt.Errorf("device plugin %s: device-info of %s: %w", p.opts.Resource, id, err)
		}
		path := DeviceInfoPath(p.opts.DevInfoDir, p.opts.Resource, id)
		p.files = append(p.files, path)
		if err := os.WriteFile(path, data, 0o644); err != nil {
			return fmt.Errorf("device plugin %s: write device-info %s: %w", p.opts.Resource, path, err)
		}
	}
	return nil
}

// serve (re)starts the gRPC server on a fresh socket. The old server is
// stopped first: closing its listener unlinks the socket path.
func (p *DevicePlugin) serve() error {
	p.mu.Lock()
	old := p.server
	p.server = nil
	p.mu.Unlock()
	if old != nil {
		old.Stop()
	}
	if err := os.Remove(p.socket); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("device plugin %s: remove stale socket: %w", p.opts.Resource, err)
	}
	l, err := net.Listen("unix", p.socket)
	if err != nil {
		return fmt.Errorf("device plugin %s: listen on %s: %w", p.opts.Resource, p.socket, err)
	}
	srv := grpc.NewServer()
	v1beta1.RegisterDevicePluginServer(srv, &pluginServer{p: p})
	p.mu.Lock()
	p.server = srv
	p.mu.Unlock()
	go func() { _ = srv.Serve(l) }()
	return nil
}

// register calls the kubelet's Registration service, waiting (bounded by
// ctx) for its socket to accept connections.
func (p *DevicePlugin) register(ctx context.Context) error {
	conn, err := grpc.NewClient("unix://"+p.kubelet, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("register device plugin %s (socket %s) with %s: %w", p.opts.Resource, p.socket, p.kubelet, err)
	}
	defer conn.Close()
	// Stat first: a kubelet.sock replaced during the call is new then.
	fi, statErr := os.Stat(p.kubelet)
	req := &v1beta1.RegisterRequest{Version: v1beta1.Version, Endpoint: filepath.Base(p.socket), ResourceName: p.opts.Resource}
	if _, err := v1beta1.NewRegistrationClient(conn).Register(ctx, req, grpc.WaitForReady(true)); err != nil {
		return fmt.Errorf("register device plugin %s (socket %s) with %s: %w", p.opts.Resource, p.socket, p.kubelet, err)
	}
	if statErr == nil {
		p.mu.Lock()
		p.registered = fi
		p.mu.Unlock()
	}
	return nil
}

// kubeletReplaced tells whether kubelet.sock exists and is not the one last
// registered with: the fallback for a missed event, or for a directory
// removed and created again, which ends the watch on it. A new socket can
// get the inode of the one removed, so its creation time counts too.
func (p *DevicePlugin) kubeletReplaced() bool {
	fi, err := os.Stat(p.kubelet)
	if err != nil {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.registered == nil || !os.SameFile(fi, p.registered) || !fi.ModTime().Equal(p.registered.ModTime())
}

// watch registers again after the kubelet recreates kubelet.sock (seen as
// an event, or by polling every second), retrying every second until it
// succeeds or the plugin stops.
func (p *DevicePlugin) watch() {
	defer close(p.done)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	pending := false
	for {
		select {
		case <-p.ctx.Done():
			return
		case ev, ok := <-p.watcher.Events:
			if !ok {
				return
			}
			if filepath.Base(ev.Name) == kubeletSocketName && ev.Has(fsnotify.Create) {
				pending = true
			}
		case _, ok := <-p.watcher.Errors:
			if !ok {
				return
			}
			pending = true // events may be lost: registering again is harmless
		case <-tick.C:
			pending = pending || p.kubeletReplaced()
		}
		if pending {
			pending = p.reregister() != nil
		}
	}
}

// reregister serves on a new socket if the kubelet removed the old one,
// then registers.
func (p *DevicePlugin) reregister() error {
	if _, err := os.Stat(p.kubelet); err != nil {
		return err
	}
	if _, err := os.Stat(p.socket); err != nil {
		if err := p.serve(); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(p.ctx, registerTimeout)
	defer cancel()
	return p.register(ctx)
}

// pluginServer is the DevicePlugin gRPC service of a DevicePlugin.
type pluginServer struct {
	v1beta1.UnimplementedDevicePluginServer
	p *DevicePlugin
}

var _ v1beta1.DevicePluginServer = (*pluginServer)(nil)

func (s *pluginServer) GetDevicePluginOptions(context.Context, *v1beta1.Empty) (*v1beta1.DevicePluginOptions, error) {
	return &v1beta1.DevicePluginOptions{}, nil
}

// ListAndWatch sends every device Healthy once, then blocks until the
// kubelet hangs up or the plugin stops.
func (s *pluginServer) ListAndWatch(_ *v1beta1.Empty, stream grpc.ServerStreamingServer[v1beta1.ListAndWatchResponse]) error {
	resp := &v1beta1.ListAndWatchResponse{}
	for _, id := range s.p.opts.Devices {
		resp.Devices = append(resp.Devices, &v1beta1.Device{ID: id, Health: v1beta1.Healthy})
	}
	if err := stream.Send(resp); err != nil {
		return fmt.Errorf("device plugin %s: send devices: %w", s.p.opts.Resource, err)
	}
	select {
	case <-stream.Context().Done():
	case <-s.p.ctx.Done():
	}
	return nil
}

func (s *pluginServer) GetPreferredAllocation(_ context.Context, req *v1beta1.PreferredAllocationRequest) (*v1beta1.PreferredAllocationResponse, error) {
	resp := &v1beta1.PreferredAllocationResponse{}
	for range req.ContainerRequests {
		resp.ContainerResponses = append(resp.ContainerResponses, &v1beta1.ContainerPreferredAllocationResponse{})
	}
	return resp, nil
}

// Allocate records the device IDs of each container request and answers
// with them in DevicePluginEnv.
func (s *pluginServer) Allocate(_ context.Context, req *v1beta1.AllocateRequest) (*v1beta1.AllocateResponse, error) {
	resp := &v1beta1.AllocateResponse{}
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	for _, c := range req.ContainerRequests {
		ids := append([]string(nil), c.DevicesIds...)
		s.p.allocs = append(s.p.allocs, ids)
		resp.ContainerResponses = append(resp.ContainerResponses, &v1beta1.ContainerAllocateResponse{
			Envs: map[string]string{DevicePluginEnv: strings.Join(ids, ",")},
		})
	}
	return resp, nil
}

func (s *pluginServer) PreStartContainer(context.Context, *v1beta1.PreStartContainerRequest) (*v1beta1.PreStartContainerResponse, error) {
	return &v1beta1.PreStartContainerResponse{}, nil
}
