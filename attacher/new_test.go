package attacher

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/braid-cni/braid/internal/testutil"
	"github.com/braid-cni/braid/netconf"
	"github.com/braid-cni/braid/status"
)

// fakeAPI serves pods and NADs from maps and records status and events.
type fakeAPI struct {
	pods     map[string]*corev1.Pod
	nads     map[string]*nadv1.NetworkAttachmentDefinition
	statuses [][]nadv1.NetworkStatus
	events   []string
	mu       sync.Mutex // guards events, which come concurrently
}

func (f *fakeAPI) GetPod(_ context.Context, ns, name string) (*corev1.Pod, error) {
	if p, ok := f.pods[ns+"/"+name]; ok {
		return p, nil
	}
	return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "pods"}, name)
}

func (f *fakeAPI) GetNAD(_ context.Context, ns, name string) (*nadv1.NetworkAttachmentDefinition, error) {
	if n, ok := f.nads[ns+"/"+name]; ok {
		return n, nil
	}
	return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "network-attachment-definitions"}, name)
}

func (f *fakeAPI) Record(_ context.Context, _ status.PodRef, s []nadv1.NetworkStatus) error {
	f.statuses = append(f.statuses, s)
	return nil
}

func (f *fakeAPI) Event(_ context.Context, _ status.PodRef, _, reason, _ string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, reason)
	return nil
}

// TestNewWiresTheAPI: the API a caller gives New (what braidd passes, backed
// by its informers) is used for the pod, the NADs and the status, and the
// request comes from the runtime's CNI_ARGS.
func TestNewWiresTheAPI(t *testing.T) {
	dir := t.TempDir()
	cluster := filepath.Join(dir, "cluster.conflist")
	if err := os.WriteFile(cluster, []byte(`{"cniVersion":"1.0.0","name":"podnet","plugins":[{"type":"ptp"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	conf, err := netconf.Parse(fmt.Appendf(nil, `{"cniVersion":"1.0.0","name":"braid","type":"braid","clusterNetwork":%q,"cniDir":%q,"confDir":%q,"logToStderr":false}`,
		cluster, filepath.Join(dir, "cni"), filepath.Join(dir, "net.d")))
	if err != nil {
		t.Fatal(err)
	}
	api := &fakeAPI{
		pods: map[string]*corev1.Pod{"ns1/web": {ObjectMeta: metav1.ObjectMeta{
			Namespace: "ns1", Name: "web", UID: "uid-1",
			Annotations: map[string]string{nadv1.NetworkAttachmentAnnot: "blue"},
		}}},
		nads: map[string]*nadv1.NetworkAttachmentDefinition{"ns1/blue": {
			ObjectMeta: metav1.ObjectMeta{Namespace: "ns1", Name: "blue"},
			Spec:       nadv1.NetworkAttachmentDefinitionSpec{Config: `{"cniVersion":"1.0.0","name":"blue","type":"bridge"}`},
		}},
	}
	exec := testutil.NewExec()
	a := New(conf, Options{API: &API{Pods: api, NADs: api, Recorder: api}, Exec: exec})
	req, err := NewRequest(conf, "c1", "/var/run/netns/c1", "eth0", "IgnoreUnknown=1;K8S_POD_NAMESPACE=ns1;K8S_POD_NAME=web;K8S_POD_UID=uid-1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Add(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if got, want := exec.Seen("ADD"), []string{"ADD ptp c1 eth0", "ADD bridge c1 net1"}; !slices.Equal(got, want) {
		t.Errorf("ADD calls = %q, want %q", got, want)
	}
	if len(api.statuses) != 1 || len(api.statuses[0]) != 2 || api.statuses[0][1].Name != "ns1/blue" {
		data, _ := json.Marshal(api.statuses)
		t.Errorf("statuses = %s", data)
	}
	if len(api.events) != 1 {
		t.Errorf("events = %v, want one for the ADD", api.events)
	}
}
