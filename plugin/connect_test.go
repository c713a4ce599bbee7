package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"testing"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/braid-cni/braid/netconf"
	"github.com/braid-cni/braid/status"
)

// fakeAPI serves one pod and its NADs from maps and records status.
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

// TestConnect: an injected API (what the daemon passes) is used for the pod,
// the NADs and the status, and a Connect error fails the verb unchanged.
func TestConnect(t *testing.T) {
	e := newEnv(t, "1.0.0")
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
	var sawConf *netconf.NetConf
	e.plugin.Connect = func(conf *netconf.NetConf) (*API, error) {
		sawConf = conf
		return &API{Pods: api, NADs: api, Recorder: api}, nil
	}
	if err := e.plugin.Add(e.args(t, "c1", nil)); err != nil {
		t.Fatal(err)
	}
	if sawConf == nil || sawConf.CNIDir != e.cniDir {
		t.Errorf("Connect got config %+v", sawConf)
	}
	if got, want := e.exec.Seen("ADD"), []string{"ADD ptp c1 eth0", "ADD bridge c1 net1"}; !slices.Equal(got, want) {
		t.Errorf("ADD calls = %q, want %q", got, want)
	}
	if len(api.statuses) != 1 || len(api.statuses[0]) != 2 || api.statuses[0][1].Name != "ns1/blue" {
		data, _ := json.Marshal(api.statuses)
		t.Errorf("statuses = %s", data)
	}
	if len(api.events) != 2 {
		t.Errorf("events = %v, want one per attachment", api.events)
	}

	boom := errors.New("daemon caches not synced")
	e.plugin.Connect = func(*netconf.NetConf) (*API, error) { return nil, boom }
	if err := e.plugin.Add(e.args(t, "c2", nil)); !errors.Is(err, boom) {
		t.Errorf("Add with a failing Connect = %v, want %v", err, boom)
	}
}
