package doctor

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc"
	podresourcesv1 "k8s.io/kubelet/pkg/apis/podresources/v1"

	"github.com/braid-cni/braid/internal/testutil"
	"github.com/braid-cni/braid/netconf"
)

type podResources struct {
	podresourcesv1.UnimplementedPodResourcesListerServer
}

func (podResources) List(context.Context, *podresourcesv1.ListPodResourcesRequest) (*podresourcesv1.ListPodResourcesResponse, error) {
	return &podresourcesv1.ListPodResourcesResponse{PodResources: []*podresourcesv1.PodResources{{Name: "a"}, {Name: "b"}}}, nil
}

func TestCheckDevices(t *testing.T) {
	dir := testutil.SocketDir(t)
	socket := filepath.Join(dir, "kubelet.sock")
	l := testutil.ListenUnix(t, socket)
	srv := grpc.NewServer()
	podresourcesv1.RegisterPodResourcesListerServer(srv, podResources{})
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(srv.Stop)
	checkpoint := filepath.Join(dir, "checkpoint")
	if err := os.WriteFile(checkpoint, []byte(`{"Data":{}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name               string
		socket, checkpoint string
		status             Status
		want               []string
	}{
		{"the kubelet answers", socket, checkpoint, OK, []string{"answers on " + socket, "(2 pods)", "/devinfo"}},
		{"only the checkpoint", filepath.Join(dir, "none.sock"), checkpoint, Warn, []string{"none.sock", "reads the device manager checkpoint " + checkpoint}},
		{"neither", filepath.Join(dir, "none.sock"), filepath.Join(dir, "none"), Warn, []string{"none.sock", "cannot get devices on this node"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conf := &netconf.NetConf{PodResourcesSocket: tc.socket, DeviceCheckpoint: tc.checkpoint, DeviceInfoDir: "/devinfo"}
			r := CheckDevices(context.Background(), conf, Options{})
			if r.Status != tc.status || r.Name != "devices" {
				t.Errorf("result %+v, want status %v", r, tc.status)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.Detail, w) {
					t.Errorf("detail %q does not say %q", r.Detail, w)
				}
			}
			if r.Status != OK && r.Fix == "" {
				t.Errorf("a warning without a fix: %+v", r)
			}
		})
	}
}
