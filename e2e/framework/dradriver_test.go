package framework

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	corev1 "k8s.io/api/core/v1"
	resourceapi "k8s.io/api/resource/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	drapb "k8s.io/kubelet/pkg/apis/dra/v1"
	registerapi "k8s.io/kubelet/pkg/apis/pluginregistration/v1"
)

const testDriver = "net.braid.test"

// draKubelet plays the kubelet's plugin watcher: it waits for the driver's
// registration socket, asks for its info and answers with accept.
func draKubelet(t *testing.T, regDir string, accept bool) <-chan *registerapi.PluginInfo {
	t.Helper()
	infos := make(chan *registerapi.PluginInfo, 1)
	sock := filepath.Join(regDir, testDriver+"-reg.sock")
	go func() {
		defer close(infos)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		for {
			if _, err := os.Stat(sock); err == nil {
				break
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
		conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return
		}
		defer conn.Close()
		c := registerapi.NewRegistrationClient(conn)
		info, err := c.GetInfo(ctx, &registerapi.InfoRequest{}, grpc.WaitForReady(true))
		if err != nil {
			return
		}
		status := &registerapi.RegistrationStatus{PluginRegistered: accept}
		if !accept {
			status.Error = "refused by the test"
		}
		if _, err := c.NotifyRegistrationStatus(ctx, status); err == nil {
			infos <- info
		}
	}()
	return infos
}

// draClient fakes the API server: ResourceSlices get the names the API
// server would generate, and the node exists.
func draClient() *fake.Clientset {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node1", UID: "node1-uid"}}
	client := fake.NewClientset(node)
	n := 0
	client.PrependReactor("create", "resourceslices", func(a k8stesting.Action) (bool, runtime.Object, error) {
		sl := a.(k8stesting.CreateAction).GetObject().(*resourceapi.ResourceSlice)
		if sl.Name == "" {
			sl.Name = sl.GenerateName + string(rune('a'+n))
			n++
		}
		return false, nil, nil // on to the tracker
	})
	return client
}

func draDirs(t *testing.T) (regDir, pluginDir string) {
	t.Helper()
	root := t.TempDir()
	regDir = filepath.Join(root, "plugins_registry")
	if err := os.Mkdir(regDir, 0o750); err != nil {
		t.Fatal(err)
	}
	return regDir, filepath.Join(root, "plugins", testDriver)
}

func TestDRADriver(t *testing.T) {
	regDir, pluginDir := draDirs(t)
	client := draClient()
	infos := draKubelet(t, regDir, true)
	ctx := t.Context()
	d, err := StartDRADriver(ctx, DRADriverOptions{
		Driver: testDriver, NodeName: "node1", Kube: client, RegistrarDir: regDir, PluginDir: pluginDir,
		Devices: []DRADevice{{Name: "vf-0", ResourceName: "braid.test/vf", DeviceID: "bdra0"}, {Name: "vf-1", ResourceName: "braid.test/vf", DeviceID: "bdra1"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Stop() })

	info := <-infos
	if info == nil || info.Type != registerapi.DRAPlugin || info.Name != testDriver || info.Endpoint != filepath.Join(pluginDir, "dra.sock") ||
		!slices.Contains(info.SupportedVersions, drapb.DRAPluginService) {
		t.Errorf("plugin info %+v, want a DRA plugin %s on %s supporting %s", info, testDriver, filepath.Join(pluginDir, "dra.sock"), drapb.DRAPluginService)
	}
	checkSlice(t, client)

	// Prepare and unprepare an allocated claim as the kubelet does.
	claim := &resourceapi.ResourceClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "net", Namespace: "ns", UID: "claim-uid"},
		Status: resourceapi.ResourceClaimStatus{Allocation: &resourceapi.AllocationResult{Devices: resourceapi.DeviceAllocationResult{
			Results: []resourceapi.DeviceRequestAllocationResult{
				{Request: "vf", Driver: testDriver, Pool: "node1", Device: "vf-1"},
				{Request: "gpu", Driver: "other.test", Pool: "node1", Device: "gpu0"},
			},
		}}},
	}
	if _, err := client.ResourceV1().ResourceClaims("ns").Create(ctx, claim, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient("unix://"+info.Endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	dra := drapb.NewDRAPluginClient(conn)
	req := []*drapb.Claim{{Namespace: "ns", Name: "net", Uid: "claim-uid"}}
	prep, err := dra.NodePrepareResources(ctx, &drapb.NodePrepareResourcesRequest{Claims: req})
	if err != nil {
		t.Fatalf("NodePrepareResources: %v", err)
	}
	got := prep.Claims["claim-uid"]
	if got == nil || got.Error != "" || len(got.Devices) != 1 || got.Devices[0].PoolName != "node1" || got.Devices[0].DeviceName != "vf-1" || len(got.Devices[0].CdiDeviceIds) != 0 {
		t.Errorf("NodePrepareResources answered %v, want device node1/vf-1 without CDI devices", prep.Claims)
	}
	if p := d.Prepared(); len(p) != 1 || p[0].UID != "claim-uid" || !slices.Equal(p[0].Devices, []string{"vf-1"}) {
		t.Errorf("Prepared() = %+v, want claim-uid with vf-1", p)
	}
	unprep, err := dra.NodeUnprepareResources(ctx, &drapb.NodeUnprepareResourcesRequest{Claims: req})
	if err != nil {
		t.Fatalf("NodeUnprepareResources: %v", err)
	}
	if r := unprep.Claims["claim-uid"]; r == nil || r.Error != "" {
		t.Errorf("NodeUnprepareResources answered %v", unprep.Claims)
	}
	if u := d.Unprepared(); len(u) != 1 || u[0].UID != "claim-uid" || u[0].Name != "net" {
		t.Errorf("Unprepared() = %+v, want claim-uid", u)
	}

	if err := d.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := d.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	checkGone(t, client, regDir, pluginDir)
}

// TestDRADriverRefused: a driver the kubelet refuses fails to start and
// leaves nothing behind.
func TestDRADriverRefused(t *testing.T) {
	regDir, pluginDir := draDirs(t)
	client := draClient()
	draKubelet(t, regDir, false)
	_, err := StartDRADriver(t.Context(), DRADriverOptions{
		Driver: testDriver, NodeName: "node1", Kube: client, RegistrarDir: regDir, PluginDir: pluginDir,
		Devices: []DRADevice{{Name: "vf-0", ResourceName: "braid.test/vf", DeviceID: "bdra0"}},
	})
	if err == nil || !strings.Contains(err.Error(), "refused by the test") {
		t.Fatalf("StartDRADriver: %v, want the kubelet's refusal", err)
	}
	checkGone(t, client, regDir, pluginDir)
}

// checkSlice checks the published ResourceSlice: the node's, with both
// devices and their network attributes.
func checkSlice(t *testing.T, client *fake.Clientset) {
	t.Helper()
	list, err := client.ResourceV1().ResourceSlices().List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 1 {
		t.Fatalf("%d ResourceSlices, want 1", len(list.Items))
	}
	sl := list.Items[0]
	if sl.Spec.Driver != testDriver || sl.Spec.NodeName == nil || *sl.Spec.NodeName != "node1" || sl.Spec.Pool.Name != "node1" {
		t.Errorf("ResourceSlice spec %+v, want driver %s, node and pool node1", sl.Spec, testDriver)
	}
	ids := map[string]string{}
	for _, dev := range sl.Spec.Devices {
		res, id := dev.Attributes[draResourceNameAttribute].StringValue, dev.Attributes[draDeviceIDAttribute].StringValue
		if res == nil || *res != "braid.test/vf" || id == nil {
			t.Errorf("device %s attributes %+v", dev.Name, dev.Attributes)
			continue
		}
		ids[dev.Name] = *id
	}
	if len(ids) != 2 || ids["vf-0"] != "bdra0" || ids["vf-1"] != "bdra1" {
		t.Errorf("devices → deviceID %v, want vf-0 → bdra0, vf-1 → bdra1", ids)
	}
}

// checkGone checks that no ResourceSlice, socket or created directory
// is left, and the kubelet's registration directory is.
func checkGone(t *testing.T, client *fake.Clientset, regDir, pluginDir string) {
	t.Helper()
	list, err := client.ResourceV1().ResourceSlices().List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 0 {
		t.Errorf("%d ResourceSlices left", len(list.Items))
	}
	entries, err := os.ReadDir(regDir)
	if err != nil || len(entries) != 0 {
		t.Errorf("registration dir: %v, %v; want it empty", entries, err)
	}
	if _, err := os.Stat(filepath.Dir(pluginDir)); !os.IsNotExist(err) {
		t.Errorf("%s: %v, want it removed", filepath.Dir(pluginDir), err)
	}
}
