package doctor

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8stypes "k8s.io/apimachinery/pkg/types"

	"github.com/braid-cni/braid/annotations"
	"github.com/braid-cni/braid/journal"
	"github.com/braid-cni/braid/netconf"
	"github.com/braid-cni/braid/plan"
)

type onePod struct{ pod *corev1.Pod }

func (o *onePod) GetPod(_ context.Context, ns, name string) (*corev1.Pod, error) {
	if o.pod == nil || o.pod.Namespace != ns || o.pod.Name != name {
		return nil, apierrors.NewNotFound(corev1.Resource("pods"), name)
	}
	return o.pod, nil
}

// TestCheckHotplug: on a thin node a running pod whose annotation asks for
// more or less than it has is named with what differs; thick mode and
// pods in line are ok; a pod recreated under its name is not judged.
func TestCheckHotplug(t *testing.T) {
	dir := t.TempDir()
	store := journal.New(filepath.Join(dir, "braid"))
	p := &plan.Plan{Version: plan.Version, ContainerID: "c1", IfName: "eth0", Pluggable: true,
		Pod: plan.PodRef{Namespace: "ns1", Name: "web", UID: "uid-1"},
		Attachments: []plan.Attachment{
			{IfName: "eth0", Network: "cluster", Cluster: true, Config: json.RawMessage(`{"type":"bridge"}`)},
			{IfName: "net1", Network: "ns1/blue", Selected: true, Config: json.RawMessage(`{"type":"bridge"}`)},
		}}
	if err := store.Save(p); err != nil {
		t.Fatal(err)
	}
	pod := func(uid, networks string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns1", Name: "web", UID: k8stypes.UID(uid), Annotations: map[string]string{annotations.NetworksKey: networks}}}
	}
	thin := &netconf.NetConf{CNIDir: store.Dir}
	tests := []struct {
		name   string
		conf   *netconf.NetConf
		pod    *corev1.Pod
		status Status
		want   string
	}{
		{"in line", thin, pod("uid-1", "blue"), OK, "1 running pods match"},
		{"one more asked", thin, pod("uid-1", "blue, green"), Warn, "ns1/web (add ns1/green)"},
		{"one fewer asked", thin, pod("uid-1", ""), Warn, "ns1/web (remove net1)"},
		{"recreated", thin, pod("uid-2", "blue, green"), OK, "0 running pods"},
		{"gone", thin, nil, OK, "0 running pods"},
		{"thick mode", &netconf.NetConf{CNIDir: store.Dir, DaemonSocketDir: "/run/braid"}, pod("uid-1", "blue, green"), OK, "braidd applies"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := CheckHotplug(context.Background(), tt.conf, Options{Pods: &onePod{pod: tt.pod}})
			if got.Status != tt.status || !strings.Contains(got.Detail, tt.want) {
				t.Errorf("CheckHotplug = %+v, want %s containing %q", got, tt.status, tt.want)
			}
			if got.Status == Warn && !strings.Contains(got.Fix, "thick mode") {
				t.Errorf("fix %q does not point to thick mode", got.Fix)
			}
		})
	}
}
