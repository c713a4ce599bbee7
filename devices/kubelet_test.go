package devices

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	podresourcesv1 "k8s.io/kubelet/pkg/apis/podresources/v1"

	"github.com/braid-cni/braid/internal/testutil"
)

// fakePodResources is the kubelet's pod-resources service, spoken over a
// real gRPC unix socket.
type fakePodResources struct {
	podresourcesv1.UnimplementedPodResourcesListerServer
	pods  []*podresourcesv1.PodResources
	calls atomic.Int32
}

func (f *fakePodResources) List(context.Context, *podresourcesv1.ListPodResourcesRequest) (*podresourcesv1.ListPodResourcesResponse, error) {
	f.calls.Add(1)
	return &podresourcesv1.ListPodResourcesResponse{PodResources: f.pods}, nil
}

// serve starts f on a socket in a fresh directory and returns its path.
func (f *fakePodResources) serve(t testing.TB) string {
	t.Helper()
	socket := filepath.Join(testutil.SocketDir(t), "kubelet.sock")
	l := testutil.ListenUnix(t, socket)
	srv := grpc.NewServer()
	podresourcesv1.RegisterPodResourcesListerServer(srv, f)
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(srv.Stop)
	return socket
}

func container(name string, devs ...*podresourcesv1.ContainerDevices) *podresourcesv1.ContainerResources {
	return &podresourcesv1.ContainerResources{Name: name, Devices: devs}
}

func devs(resource string, ids ...string) *podresourcesv1.ContainerDevices {
	return &podresourcesv1.ContainerDevices{ResourceName: resource, DeviceIds: ids}
}

func pod(ns, name, uid string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: typesUID(uid)}}
}

func ids(devs []Device) []string {
	out := make([]string, len(devs))
	for i, d := range devs {
		out[i] = d.Resource + "=" + d.ID
	}
	slices.Sort(out)
	return out
}

func TestKubeletFromAPI(t *testing.T) {
	f := &fakePodResources{pods: []*podresourcesv1.PodResources{
		{Namespace: "ns1", Name: "other", Containers: []*podresourcesv1.ContainerResources{container("c", devs("example.com/vf", "vf9"))}},
		{Namespace: "ns1", Name: "web", Containers: []*podresourcesv1.ContainerResources{
			container("app", devs("example.com/vf", "vf3", "vf1"), devs("example.com/gpu", "g0")),
			container("sidecar", devs("other.io/nic", "0000:3b:02.1")),
		}},
		{Namespace: "ns2", Name: "web", Containers: []*podresourcesv1.ContainerResources{container("c", devs("example.com/vf", "vf7"))}},
	}}
	k := &Kubelet{Socket: f.serve(t), Checkpoint: filepath.Join(t.TempDir(), "none")}
	got, err := k.Devices(t.Context(), pod("ns1", "web", "u1"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"example.com/gpu=g0", "example.com/vf=vf1", "example.com/vf=vf3", "other.io/nic=0000:3b:02.1"}
	if !slices.Equal(ids(got), want) {
		t.Errorf("devices = %v, want %v", ids(got), want)
	}
	if f.calls.Load() != 1 {
		t.Errorf("List called %d times, want 1", f.calls.Load())
	}
	// A pod the kubelet lists without devices has none; the checkpoint is
	// not needed (and here does not exist).
	got, err = k.Devices(t.Context(), pod("ns1", "nothing", "u2"))
	if err != nil || len(got) != 0 {
		t.Errorf("pod without devices: %v, %v; want none, no error", ids(got), err)
	}
}

const checkpointNUMA = `{"Data":{"PodDeviceEntries":[
 {"PodUID":"u1","ContainerName":"app","ResourceName":"example.com/vf","DeviceIDs":{"0":["vf2"],"1":["vf0"]},"AllocResp":"CgA="},
 {"PodUID":"u1","ContainerName":"side","ResourceName":"other.io/nic","DeviceIDs":{"-1":["n1"]},"AllocResp":"CgA="},
 {"PodUID":"u2","ContainerName":"app","ResourceName":"example.com/vf","DeviceIDs":{"0":["vf5"]},"AllocResp":"CgA="}
],"RegisteredDevices":{"example.com/vf":["vf0","vf2","vf5"]}},"Checksum":12345}`

const checkpointList = `{"Data":{"PodDeviceEntries":[
 {"PodUID":"u1","ContainerName":"app","ResourceName":"example.com/vf","DeviceIDs":["vf4","vf3"],"AllocResp":"CgA="}
],"RegisteredDevices":{}},"Checksum":1}`

func writeFile(t *testing.T, name, data string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestKubeletCheckpointFallback(t *testing.T) {
	for _, tc := range []struct {
		name, checkpoint string
		want             []string
	}{
		{"devices per NUMA node (1.20+)", checkpointNUMA, []string{"example.com/vf=vf0", "example.com/vf=vf2", "other.io/nic=n1"}},
		{"plain list (before 1.20)", checkpointList, []string{"example.com/vf=vf3", "example.com/vf=vf4"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := &Kubelet{Socket: filepath.Join(t.TempDir(), "no.sock"), Checkpoint: writeFile(t, "cp", tc.checkpoint)}
			got, err := k.Devices(t.Context(), pod("ns1", "web", "u1"))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(ids(got), tc.want) {
				t.Errorf("devices = %v, want %v", ids(got), tc.want)
			}
		})
	}
}

// The API answers but does not list the pod yet: the checkpoint, written
// at admission, is asked.
func TestKubeletPodNotListedReadsCheckpoint(t *testing.T) {
	f := &fakePodResources{}
	k := &Kubelet{Socket: f.serve(t), Checkpoint: writeFile(t, "cp", checkpointNUMA)}
	got, err := k.Devices(t.Context(), pod("ns1", "web", "u2"))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"example.com/vf=vf5"}; !slices.Equal(ids(got), want) {
		t.Errorf("devices = %v, want %v", ids(got), want)
	}
}

func TestKubeletNeitherAnswers(t *testing.T) {
	dir := t.TempDir()
	k := &Kubelet{Socket: filepath.Join(dir, "no.sock"), Checkpoint: filepath.Join(dir, "no-checkpoint")}
	_, err := k.Devices(t.Context(), pod("ns1", "web", "u1"))
	if err == nil {
		t.Fatal("no error with neither the API nor the checkpoint")
	}
	for _, want := range []string{"ns1/web", "no.sock", "no-checkpoint", "pod-resources", "checkpoint"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
}

func TestReadCheckpointBroken(t *testing.T) {
	for _, data := range []string{`{`, `{"Data":{"PodDeviceEntries":[{"PodUID":"u1","ResourceName":"r","DeviceIDs":"x"}]}}`} {
		if _, err := ReadCheckpoint(writeFile(t, "cp", data), "u1"); err == nil {
			t.Errorf("checkpoint %s: no error", data)
		}
	}
}

// BenchmarkKubeletDevices is what a device-backed ADD adds: one
// pod-resources List over a fresh gRPC connection, on a node with 110 pods
// (the kubelet's default maxPods) of two containers with two devices each.
func BenchmarkKubeletDevices(b *testing.B) {
	f := &fakePodResources{}
	for i := range 110 {
		id := func(c int) string { return fmt.Sprintf("0000:3b:%02x.%d", i, c) }
		f.pods = append(f.pods, &podresourcesv1.PodResources{Namespace: "ns", Name: fmt.Sprintf("pod-%d", i), Containers: []*podresourcesv1.ContainerResources{
			container("a", devs("example.com/vf", id(0), id(1))),
			container("b", devs("example.com/vf", id(2), id(3))),
		}})
	}
	k := &Kubelet{Socket: f.serve(b), Checkpoint: filepath.Join(b.TempDir(), "none")}
	p := pod("ns", "pod-77", "u")
	b.ReportAllocs()
	for b.Loop() {
		got, err := k.Devices(b.Context(), p)
		if err != nil || len(got) != 4 {
			b.Fatalf("devices %v, %v", got, err)
		}
	}
}
