package status

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"reflect"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	k8stypes "k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/record"

	"github.com/braid-cni/braid/internal/testutil"
)

func mustCIDR(t *testing.T, s string) net.IPNet {
	t.Helper()
	ip, n, err := net.ParseCIDR(s)
	if err != nil {
		t.Fatal(err)
	}
	n.IP = ip
	return *n
}

func idx(i int) *int { return &i }

func TestBuild(t *testing.T) {
	_, any4, _ := net.ParseCIDR("0.0.0.0/0")
	cluster := &current.Result{
		CNIVersion: "1.0.0",
		Interfaces: []*current.Interface{
			{Name: "cni0", Mac: "aa:aa:aa:aa:aa:01"},
			{Name: "eth0", Mac: "aa:aa:aa:aa:aa:02", Mtu: 1450, Sandbox: "/var/run/netns/x"},
		},
		IPs:    []*current.IPConfig{{Interface: idx(1), Address: mustCIDR(t, "10.244.0.5/24"), Gateway: net.ParseIP("10.244.0.1")}},
		Routes: []*types.Route{{Dst: *any4, GW: net.ParseIP("10.244.0.1")}},
		DNS:    types.DNS{Nameservers: []string{"10.96.0.10"}, Search: []string{"svc.cluster.local"}},
	}
	secondary := &current.Result{
		CNIVersion: "1.0.0",
		Interfaces: []*current.Interface{{Name: "net1", Mac: "aa:aa:aa:aa:aa:03", Sandbox: "/var/run/netns/x"}},
		IPs:        []*current.IPConfig{{Interface: idx(0), Address: mustCIDR(t, "10.10.1.7/24")}},
	}
	noGW := &current.Result{
		CNIVersion: "1.0.0",
		Interfaces: []*current.Interface{{Name: "net3", Mac: "aa:aa:aa:aa:aa:04", Sandbox: "/var/run/netns/x"}},
		IPs:        []*current.IPConfig{{Interface: idx(0), Address: mustCIDR(t, "10.30.0.4/24"), Gateway: net.ParseIP("10.30.0.1")}},
		Routes:     []*types.Route{{Dst: *any4}},
	}
	ipamOnly := &current.Result{
		CNIVersion: "1.0.0",
		IPs:        []*current.IPConfig{{Address: mustCIDR(t, "192.168.9.9/24")}},
	}
	got, err := Build([]Attachment{
		{Network: "cluster", IfName: "eth0", Default: true, Result: cluster},
		{Network: "ns/blue", IfName: "net1", Result: secondary},
		{Network: "ns/host", IfName: "net2", Result: ipamOnly},
		{Network: "ns/nogw", IfName: "net3", Result: noGW},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []nadv1.NetworkStatus{
		{Name: "cluster", Interface: "eth0", IPs: []string{"10.244.0.5"}, Mac: "aa:aa:aa:aa:aa:02", Mtu: 1450, Default: true,
			DNS: nadv1.DNS{Nameservers: []string{"10.96.0.10"}, Search: []string{"svc.cluster.local"}}, Gateway: []string{"10.244.0.1"}},
		{Name: "ns/blue", Interface: "net1", IPs: []string{"10.10.1.7"}, Mac: "aa:aa:aa:aa:aa:03", DNS: nadv1.DNS{Nameservers: []string{}, Search: []string{}, Options: []string{}}},
		{Name: "ns/host", Interface: "net2", IPs: []string{"192.168.9.9"}, DNS: nadv1.DNS{Nameservers: []string{}, Search: []string{}, Options: []string{}}},
		// A default route without "gw" goes through the IP's gateway.
		{Name: "ns/nogw", Interface: "net3", IPs: []string{"10.30.0.4"}, Mac: "aa:aa:aa:aa:aa:04", DNS: nadv1.DNS{}, Gateway: []string{"10.30.0.1"}},
	}
	// Compare as JSON: that is what the annotation holds, and it treats nil
	// and empty lists alike where the API does.
	if g, w := testutil.JSON(t, got), testutil.JSON(t, want); g != w {
		t.Errorf("Build =\n%s\nwant\n%s", g, w)
	}
}

// TestGateways: network-status lists the gateways of a result's default
// routes, each once, by gateway's rules.
func TestGateways(t *testing.T) {
	_, any4, _ := net.ParseCIDR("0.0.0.0/0")
	_, any6, _ := net.ParseCIDR("::/0")
	_, svc, _ := net.ParseCIDR("10.96.0.0/12")
	ips := []*current.IPConfig{
		{Address: mustCIDR(t, "10.30.0.4/24"), Gateway: net.ParseIP("10.30.0.1")},
		{Address: mustCIDR(t, "fd00:30::4/64"), Gateway: net.ParseIP("fd00:30::1")},
	}
	tests := []struct {
		name   string
		routes []*types.Route
		want   []string
	}{
		{name: "own gateways", routes: []*types.Route{{Dst: *any4, GW: net.ParseIP("10.30.0.254")}, {Dst: *any6, GW: net.ParseIP("fd00:30::fe")}}, want: []string{"10.30.0.254", "fd00:30::fe"}},
		{name: "without gw: the IP gateway of the family", routes: []*types.Route{{Dst: *any6}, {Dst: *any4}}, want: []string{"fd00:30::1", "10.30.0.1"}},
		{name: "not a default route", routes: []*types.Route{{Dst: *svc, GW: net.ParseIP("10.30.0.1")}}},
		{name: "listed once", routes: []*types.Route{{Dst: *any4}, {Dst: *any4, GW: net.ParseIP("10.30.0.1")}}, want: []string{"10.30.0.1"}},
		{name: "no dst: the gw's family", routes: []*types.Route{{GW: net.ParseIP("fd00:30::fe")}}, want: []string{"fd00:30::fe"}},
		// Neither dst nor gw: the route is of no family, so no IP's
		// gateway is taken for it (this used to report the IPv4 one).
		{name: "no dst and no gw", routes: []*types.Route{{}}},
		{name: "null route", routes: []*types.Route{nil, {Dst: *any4}}, want: []string{"10.30.0.1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := gateways(&current.Result{CNIVersion: "1.0.0", IPs: ips, Routes: tt.routes})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("gateways = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRecordPatchesStatus(t *testing.T) {
	statuses := []nadv1.NetworkStatus{{Name: "cluster", Interface: "eth0", IPs: []string{"10.0.0.2"}, Default: true}}
	// The annotation's value as a JSON string inside the patch.
	value := `[{\"name\":\"cluster\",\"interface\":\"eth0\",\"ips\":[\"10.0.0.2\"],\"default\":true,\"dns\":{}}]`
	tests := []struct {
		name      string
		uid       k8stypes.UID
		wantPatch string
	}{
		{
			// The UID is the API server's precondition: a pod of
			// that name with another UID is not written.
			name:      "with UID",
			uid:       "7d5f9c1e-0000-4000-8000-000000000001",
			wantPatch: `{"metadata":{"annotations":{"k8s.v1.cni.cncf.io/network-status":"` + value + `"},"uid":"7d5f9c1e-0000-4000-8000-000000000001"}}`,
		},
		{
			name:      "no UID known",
			wantPatch: `{"metadata":{"annotations":{"k8s.v1.cni.cncf.io/network-status":"` + value + `"}}}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: tt.uid, Annotations: map[string]string{"keep": "me"}}}
			client := fake.NewSimpleClientset(pod)
			w := &Writer{Client: client, Component: "braid", Node: "node1"}
			if err := w.Record(context.Background(), PodRef{Namespace: "ns", Name: "p", UID: tt.uid}, statuses); err != nil {
				t.Fatal(err)
			}
			var patches []k8stesting.PatchAction
			for _, a := range client.Actions() {
				if p, ok := a.(k8stesting.PatchAction); ok {
					patches = append(patches, p)
				}
			}
			if len(patches) != 1 || patches[0].GetSubresource() != "status" || patches[0].GetPatchType() != k8stypes.MergePatchType {
				t.Fatalf("actions = %v, want one merge PATCH of pods/status", client.Actions())
			}
			if got := string(patches[0].GetPatch()); got != tt.wantPatch {
				t.Errorf("patch\n got %s\nwant %s", got, tt.wantPatch)
			}
			got, err := client.CoreV1().Pods("ns").Get(context.Background(), "p", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			var back []nadv1.NetworkStatus
			if err := json.Unmarshal([]byte(got.Annotations[nadv1.NetworkStatusAnnot]), &back); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(back, statuses) || got.Annotations["keep"] != "me" {
				t.Errorf("annotations after Record = %v", got.Annotations)
			}
		})
	}
}

// uidRefused is what the API server answers Record's patch of pod ns/p
// when the stored pod has another UID (seen in e2e/status_uid_test.go).
func uidRefused() error {
	return apierrors.NewInvalid(schema.GroupKind{Kind: "Pod"}, "p", field.ErrorList{
		field.Invalid(field.NewPath("metadata", "uid"), "1111", "field is immutable"),
	})
}

func TestPodGone(t *testing.T) {
	pods := schema.GroupResource{Resource: "pods"}
	recreated := uidRefused()
	// What the API server answers an update whose UID precondition fails.
	preconditionFailed := apierrors.NewConflict(pods, "p", errors.New("StorageError: invalid object, Code: 4, Key: /registry/pods/ns/p, ResourceVersion: 0, AdditionalErrorMsg: Precondition failed: UID in precondition: 1111, UID in object meta: 2222"))
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{name: "not found", err: apierrors.NewNotFound(pods, "p"), want: true},
		{name: "not found, wrapped", err: fmt.Errorf("patch network-status of pod ns/p: %w", apierrors.NewNotFound(pods, "p")), want: true},
		{name: "recreated", err: recreated, want: true},
		{name: "recreated, wrapped", err: fmt.Errorf("patch network-status of pod ns/p: %w", recreated), want: true},
		{name: "UID precondition failed", err: preconditionFailed, want: true},
		{name: "UID precondition failed, wrapped", err: fmt.Errorf("update pod ns/p: %w", preconditionFailed), want: true},
		{name: "another field invalid", err: apierrors.NewInvalid(schema.GroupKind{Kind: "Pod"}, "p", field.ErrorList{
			field.TooLong(field.NewPath("metadata", "annotations"), "", 262144),
		})},
		{name: "other conflict", err: apierrors.NewConflict(pods, "p", errors.New("the object has been modified; please apply your changes to the latest version and try again"))},
		// The text alone, without the API server's Conflict, is not enough.
		{name: "precondition text, not a conflict", err: errors.New("Precondition failed: UID in precondition: 1111")},
		{name: "unavailable", err: apierrors.NewServiceUnavailable("etcd is down")},
		{name: "nil", err: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := PodGone(tt.err); got != tt.want {
				t.Errorf("PodGone(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

func TestRecordMissingPod(t *testing.T) {
	w := &Writer{Client: fake.NewSimpleClientset(), Component: "braid"}
	err := w.Record(context.Background(), PodRef{Namespace: "ns", Name: "gone"}, nil)
	if err == nil {
		t.Fatal("Record on a missing pod succeeded")
	}
}

func TestEvent(t *testing.T) {
	client := fake.NewSimpleClientset()
	var created *corev1.Event
	client.PrependReactor("create", "events", func(a k8stesting.Action) (bool, runtime.Object, error) {
		created = a.(k8stesting.CreateAction).GetObject().(*corev1.Event)
		return false, nil, nil
	})
	w := &Writer{Client: client, Component: "braid", Node: "node1"}
	if err := w.Event(context.Background(), PodRef{Namespace: "ns", Name: "p", UID: "u1"}, "Normal", "AddedInterface", "Add net1 [10.0.0.2/24] from ns/blue"); err != nil {
		t.Fatal(err)
	}
	if created == nil {
		t.Fatal("no event created")
	}
	if created.InvolvedObject.Name != "p" || created.InvolvedObject.UID != "u1" || created.Reason != "AddedInterface" ||
		created.Type != "Normal" || created.Source.Host != "node1" || created.Namespace != "ns" {
		t.Errorf("event = %+v", created)
	}
}

// TestEventThroughRecorder: with client-go's recorder the event reaches
// the API server in the background, about the pod, from the recorder's
// source.
func TestEventThroughRecorder(t *testing.T) {
	client := fake.NewSimpleClientset()
	created := make(chan *corev1.Event, 1)
	client.PrependReactor("create", "events", func(a k8stesting.Action) (bool, runtime.Object, error) {
		created <- a.(k8stesting.CreateAction).GetObject().(*corev1.Event)
		return false, nil, nil
	})
	events := record.NewBroadcaster(record.WithContext(t.Context()))
	events.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	defer events.Shutdown()
	rec := events.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "braidd", Host: "node1"})
	w := &Writer{Client: client, Component: "braidd", Node: "node1", Events: rec}
	if err := w.Event(t.Context(), PodRef{Namespace: "ns", Name: "p", UID: "u1"}, "Normal", "AddedInterface", "Add net1 [10.0.0.2/24] from ns/blue"); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-created:
		if ev.InvolvedObject.Name != "p" || ev.InvolvedObject.UID != "u1" || ev.InvolvedObject.Kind != "Pod" || ev.Namespace != "ns" ||
			ev.Reason != "AddedInterface" || ev.Type != "Normal" || ev.Source.Component != "braidd" || ev.Source.Host != "node1" {
			t.Errorf("event = %+v", ev)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no event created")
	}
}
