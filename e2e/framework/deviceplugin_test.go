package framework

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"
)

// fakeKubelet is the kubelet's Registration service on
// dir/kubelet.sock; it passes on every request it gets.
type fakeKubelet struct {
	v1beta1.UnimplementedRegistrationServer
	reqs chan *v1beta1.RegisterRequest
}

func (k *fakeKubelet) Register(_ context.Context, r *v1beta1.RegisterRequest) (*v1beta1.Empty, error) {
	k.reqs <- r
	return &v1beta1.Empty{}, nil
}

// start serves k on dir/kubelet.sock until the returned server stops.
func (k *fakeKubelet) start(t *testing.T, dir string) *grpc.Server {
	t.Helper()
	l, err := net.Listen("unix", filepath.Join(dir, kubeletSocketName))
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	v1beta1.RegisterRegistrationServer(srv, k)
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(srv.Stop)
	return srv
}

// nextRegister waits for a Register request and checks it.
func (k *fakeKubelet) nextRegister(t *testing.T, resource, endpoint string) {
	t.Helper()
	select {
	case r := <-k.reqs:
		if r.ResourceName != resource || r.Endpoint != endpoint || r.Version != v1beta1.Version {
			t.Errorf("Register(%s, %s, %s), want (%s, %s, %s)", r.ResourceName, r.Endpoint, r.Version, resource, endpoint, v1beta1.Version)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no Register request")
	}
}

// dialPlugin connects to the plugin's socket as the kubelet does.
func dialPlugin(t *testing.T, socket string) v1beta1.DevicePluginClient {
	t.Helper()
	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return v1beta1.NewDevicePluginClient(conn)
}

// listDevices returns the first list ListAndWatch sends, as ID=Health.
func listDevices(t *testing.T, c v1beta1.DevicePluginClient) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	stream, err := c.ListAndWatch(ctx, &v1beta1.Empty{}, grpc.WaitForReady(true))
	if err != nil {
		t.Fatalf("ListAndWatch: %v", err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatalf("ListAndWatch: receive: %v", err)
	}
	var got []string
	for _, d := range resp.Devices {
		got = append(got, d.ID+"="+d.Health)
	}
	return got
}

func TestDevicePlugin(t *testing.T) {
	const resource = "braid.test/vf"
	devices := []string{"btdev0", "btdev1"}
	pluginDir, base := t.TempDir(), t.TempDir()
	devInfoDir := filepath.Join(base, "devinfo") // missing: the plugin creates it
	kubelet := &fakeKubelet{reqs: make(chan *v1beta1.RegisterRequest, 10)}
	srv := kubelet.start(t, pluginDir)

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	p, err := StartDevicePlugin(ctx, DevicePluginOptions{Resource: resource, Devices: devices, PluginDir: pluginDir, DevInfoDir: devInfoDir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	endpoint := "braid-test-braid.test-vf.sock"
	if p.Socket() != filepath.Join(pluginDir, endpoint) {
		t.Errorf("Socket() = %s, want %s in %s", p.Socket(), endpoint, pluginDir)
	}
	kubelet.nextRegister(t, resource, endpoint)

	client := dialPlugin(t, p.Socket())
	if got, want := listDevices(t, client), []string{"btdev0=Healthy", "btdev1=Healthy"}; !slices.Equal(got, want) {
		t.Errorf("ListAndWatch devices = %v, want %v", got, want)
	}
	if _, err := client.GetDevicePluginOptions(ctx, &v1beta1.Empty{}); err != nil {
		t.Errorf("GetDevicePluginOptions: %v", err)
	}
	resp, err := client.Allocate(ctx, &v1beta1.AllocateRequest{ContainerRequests: []*v1beta1.ContainerAllocateRequest{
		{DevicesIds: []string{"btdev1", "btdev0"}}, {DevicesIds: []string{"btdev0"}},
	}})
	if err != nil {
		t.Fatalf("Allocate: %v", err)
	}
	if len(resp.ContainerResponses) != 2 || resp.ContainerResponses[0].Envs[DevicePluginEnv] != "btdev1,btdev0" || resp.ContainerResponses[1].Envs[DevicePluginEnv] != "btdev0" {
		t.Errorf("Allocate responses = %v, want %s=btdev1,btdev0 and %s=btdev0", resp.ContainerResponses, DevicePluginEnv, DevicePluginEnv)
	}
	if got := p.Allocations(); len(got) != 2 || !slices.Equal(got[0], []string{"btdev1", "btdev0"}) || !slices.Equal(got[1], []string{"btdev0"}) {
		t.Errorf("Allocations() = %v, want [[btdev1 btdev0] [btdev0]]", got)
	}

	for _, id := range devices {
		path := filepath.Join(devInfoDir, "dp", "braid.test-vf-"+id+"-device.json")
		if DeviceInfoPath(devInfoDir, resource, id) != path {
			t.Errorf("DeviceInfoPath(%s) = %s, want %s", id, DeviceInfoPath(devInfoDir, resource, id), path)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("device-info of %s: %v", id, err)
		}
		var info nadv1.DeviceInfo
		if err := json.Unmarshal(data, &info); err != nil {
			t.Fatalf("device-info %s: %v", path, err)
		}
		if info.Type != "pci" || info.Version != "1.1.0" || info.Pci == nil || info.Pci.PciAddress != id {
			t.Errorf("device-info %s = %s, want pci 1.1.0 with pci-address %s", path, data, id)
		}
	}

	// A restarting kubelet removes every socket in the directory and
	// creates kubelet.sock again: the plugin must serve anew and register.
	srv.Stop()
	if err := os.Remove(p.Socket()); err != nil {
		t.Fatal(err)
	}
	srv = kubelet.start(t, pluginDir)
	kubelet.nextRegister(t, resource, endpoint)
	if got := listDevices(t, dialPlugin(t, p.Socket())); len(got) != 2 {
		t.Errorf("ListAndWatch after the kubelet restart = %v, want 2 devices", got)
	}
	// The same with the whole directory made anew, which ends the watch on
	// it: polling must notice the new kubelet.sock.
	srv.Stop()
	if err := os.RemoveAll(pluginDir); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(pluginDir, 0o755); err != nil {
		t.Fatal(err)
	}
	kubelet.start(t, pluginDir)
	kubelet.nextRegister(t, resource, endpoint)
	if got := listDevices(t, dialPlugin(t, p.Socket())); len(got) != 2 {
		t.Errorf("ListAndWatch after the directory was made anew = %v, want 2 devices", got)
	}
	select {
	case r := <-kubelet.reqs:
		t.Errorf("an extra Register request %v: one per kubelet start is enough", r)
	case <-time.After(1500 * time.Millisecond):
	}

	p.Stop()
	for _, path := range []string{p.Socket(), devInfoDir} {
		if _, err := os.Lstat(path); !os.IsNotExist(err) {
			t.Errorf("%s after Stop: %v, want it removed", path, err)
		}
	}
	p.Stop() // twice is fine
}

func TestDevicePluginRegisterFails(t *testing.T) {
	pluginDir, devInfoDir := t.TempDir(), t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	// No kubelet.sock: registration must fail and name the plugin.
	p, err := StartDevicePlugin(ctx, DevicePluginOptions{Resource: "braid.test/none", Devices: []string{"x0"}, PluginDir: pluginDir, DevInfoDir: devInfoDir})
	if err == nil {
		p.Stop()
		t.Fatal("StartDevicePlugin without a kubelet: got no error")
	}
	for _, want := range []string{"braid.test/none", "braid-test-braid.test-none.sock"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	for _, dir := range []string{pluginDir, filepath.Join(devInfoDir, "dp")} {
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Errorf("%s after the failed start holds %v, want nothing", dir, entries)
		}
	}
}
