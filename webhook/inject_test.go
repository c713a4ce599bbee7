package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	nadfake "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/client/clientset/versioned/fake"
	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	k8stesting "k8s.io/client-go/testing"

	"github.com/braid-cni/braid/devices"
	"github.com/braid-cni/braid/kube"
	"github.com/braid-cni/braid/netconf"
)

// nadMap is a nad.Getter: NADs by "namespace/name"; err answers every call
// when set.
type nadMap struct {
	nads map[string]*nadv1.NetworkAttachmentDefinition
	err  error
}

func (m nadMap) GetNAD(_ context.Context, namespace, name string) (*nadv1.NetworkAttachmentDefinition, error) {
	if m.err != nil {
		return nil, m.err
	}
	if n, ok := m.nads[namespace+"/"+name]; ok {
		return n, nil
	}
	return nil, apierrors.NewNotFound(schema.GroupResource{Group: "k8s.cni.cncf.io", Resource: "network-attachment-definitions"}, name)
}

func deviceNADs() nadMap {
	m := nadMap{nads: map[string]*nadv1.NetworkAttachmentDefinition{}}
	for _, n := range []struct{ ns, name, resource string }{
		{"ns1", "vf-a", "intel.com/sriov"},
		{"ns1", "vf-b", "intel.com/sriov"},
		{"ns1", "pci", "example.com/pci"},
		{"ns1", "blue", ""},
		{"other", "vf-c", "intel.com/sriov"},
	} {
		obj := &nadv1.NetworkAttachmentDefinition{ObjectMeta: metav1.ObjectMeta{Namespace: n.ns, Name: n.name}}
		if n.resource != "" {
			obj.Annotations = map[string]string{devices.ResourceNameKey: n.resource}
		}
		m.nads[n.ns+"/"+n.name] = obj
	}
	return m
}

func limits(kv ...string) corev1.ResourceList {
	out := corev1.ResourceList{}
	for i := 0; i < len(kv); i += 2 {
		out[corev1.ResourceName(kv[i])] = resource.MustParse(kv[i+1])
	}
	return out
}

func TestInjector(t *testing.T) {
	type container struct{ limits, requests corev1.ResourceList }
	for _, tc := range []struct {
		name       string
		networks   string
		containers []container
		want       []container // nil: no patch
		warning    string
	}{
		{name: "two VFs and a PCI NIC", networks: "vf-a, vf-b@vf1, pci",
			containers: []container{{limits: limits("cpu", "1")}, {}},
			want:       []container{{limits: limits("cpu", "1", "intel.com/sriov", "2", "example.com/pci", "1")}, {}},
			warning:    "container c0 requests example.com/pci: 1, intel.com/sriov: 2"},
		{name: "requests raised with limits", networks: "vf-a, vf-a@vf2",
			containers: []container{{limits: limits("intel.com/sriov", "1"), requests: limits("intel.com/sriov", "1", "memory", "1Gi")}},
			want:       []container{{limits: limits("intel.com/sriov", "2"), requests: limits("intel.com/sriov", "2", "memory", "1Gi")}},
			warning:    "intel.com/sriov: 1"},
		{name: "another container's request counts", networks: "vf-a, vf-b",
			containers: []container{{}, {limits: limits("intel.com/sriov", "1")}},
			want:       []container{{limits: limits("intel.com/sriov", "1")}, {limits: limits("intel.com/sriov", "1")}}},
		{name: "a NAD of another namespace", networks: "other/vf-c",
			containers: []container{{}},
			want:       []container{{limits: limits("intel.com/sriov", "1")}}},
		{name: "enough requested already", networks: "vf-a, vf-b",
			containers: []container{{requests: limits("intel.com/sriov", "2")}}},
		{name: "no device-backed network", networks: "blue", containers: []container{{}}},
		{name: "a NAD not there yet", networks: "nosuch, blue", containers: []container{{}}},
		{name: "an annotation that does not parse", networks: `[{"name":`, containers: []container{{}}},
		{name: "no annotation", containers: []container{{}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := &corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}, ObjectMeta: metav1.ObjectMeta{Name: "web"}}
			if tc.networks != "" {
				pod.Annotations = map[string]string{nadv1.NetworkAttachmentAnnot: tc.networks}
			}
			for i, c := range tc.containers {
				pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: "c" + string(rune('0'+i)), Resources: corev1.ResourceRequirements{Limits: c.limits, Requests: c.requests}})
			}
			resp := inject(t, &Injector{NADs: deviceNADs()}, pod)
			if !resp.Allowed {
				t.Fatalf("pod refused: %+v", resp.Result)
			}
			if tc.want == nil {
				if resp.Patch != nil {
					t.Errorf("patch %s, want none", resp.Patch)
				}
				return
			}
			if resp.PatchType == nil || *resp.PatchType != admissionv1.PatchTypeJSONPatch {
				t.Fatalf("patch type %v", resp.PatchType)
			}
			got := applyPatch(t, pod, resp.Patch)
			for i, w := range tc.want {
				r := got.Spec.Containers[i].Resources
				if !sameList(r.Limits, w.limits) || !sameList(r.Requests, w.requests) {
					t.Errorf("container %d: limits %v requests %v, want %v and %v", i, r.Limits, r.Requests, w.limits, w.requests)
				}
			}
			if tc.warning != "" && (len(resp.Warnings) != 1 || !strings.Contains(resp.Warnings[0], tc.warning)) {
				t.Errorf("warnings %q, want one saying %q", resp.Warnings, tc.warning)
			}
		})
	}
}

// The API cannot be read: the pod is let through unchanged.
func TestInjectorAPIDown(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Annotations: map[string]string{nadv1.NetworkAttachmentAnnot: "vf-a"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c"}}}}
	resp := inject(t, &Injector{NADs: nadMap{err: errors.New("connection refused")}}, pod)
	if !resp.Allowed || resp.Patch != nil {
		t.Errorf("response %+v, want allowed without a patch", resp)
	}
}

// inject sends a review of pod, created in namespace ns1, to i.
func inject(t *testing.T, i *Injector, pod *corev1.Pod) *admissionv1.AdmissionResponse {
	t.Helper()
	i.Log = slog.New(slog.DiscardHandler)
	review := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID: "u1", Namespace: "ns1", Operation: admissionv1.Create,
			Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}, Resource: podResource, Object: raw(t, pod),
		},
	}
	body, _ := json.Marshal(review)
	rec := httptest.NewRecorder()
	i.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/inject", bytes.NewReader(body)))
	if rec.Code != http.StatusOK {
		t.Fatalf("HTTP %d: %s", rec.Code, rec.Body)
	}
	var out admissionv1.AdmissionReview
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || out.Response == nil || out.Response.UID != "u1" {
		t.Fatalf("response %s: %v", rec.Body, err)
	}
	return out.Response
}

// TestInjectorNamespaceIsolation: with braid's namespaceIsolation the NAD
// of a namespace the pod may not use is not read at all (braid refuses the
// pod for it), while its own and the global namespaces' are.
func TestInjectorNamespaceIsolation(t *testing.T) {
	const networks = "vf-a, other/vf-b, default/vf-c, shared/vf-d"
	tests := []struct {
		name       string
		namespaces *netconf.NetConf
		wantRead   []string
		wantDevs   string // intel.com/sriov added to the first container
	}{
		{name: "no settings", wantRead: []string{"ns1/vf-a", "other/vf-b", "default/vf-c", "shared/vf-d"}, wantDevs: "4"},
		{name: "isolation off", namespaces: &netconf.NetConf{GlobalNamespaces: "shared"},
			wantRead: []string{"ns1/vf-a", "other/vf-b", "default/vf-c", "shared/vf-d"}, wantDevs: "4"},
		{name: "isolation, default is global", namespaces: &netconf.NetConf{NamespaceIsolation: true},
			wantRead: []string{"ns1/vf-a", "default/vf-c"}, wantDevs: "2"},
		{name: "isolation, global namespaces set", namespaces: &netconf.NetConf{NamespaceIsolation: true, GlobalNamespaces: "shared, tools"},
			wantRead: []string{"ns1/vf-a", "shared/vf-d"}, wantDevs: "2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := nadfake.NewSimpleClientset()
			for _, key := range []string{"ns1/vf-a", "other/vf-b", "default/vf-c", "shared/vf-d"} {
				ns, name, _ := strings.Cut(key, "/")
				// Created through the typed client: the fake's tracker
				// guesses another resource name for objects given to
				// NewSimpleClientset.
				_, err := client.K8sCniCncfIoV1().NetworkAttachmentDefinitions(ns).Create(t.Context(), &nadv1.NetworkAttachmentDefinition{ObjectMeta: metav1.ObjectMeta{
					Namespace: ns, Name: name, Annotations: map[string]string{devices.ResourceNameKey: "intel.com/sriov"}}}, metav1.CreateOptions{})
				if err != nil {
					t.Fatal(err)
				}
			}
			client.ClearActions()
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Annotations: map[string]string{nadv1.NetworkAttachmentAnnot: networks}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c"}}}}
			resp := inject(t, &Injector{NADs: &kube.Clients{NADs: client}, Namespaces: tt.namespaces}, pod)

			var read []string
			for _, a := range client.Actions() {
				if g, ok := a.(k8stesting.GetAction); ok {
					read = append(read, g.GetNamespace()+"/"+g.GetName())
				}
			}
			if !slices.Equal(read, tt.wantRead) {
				t.Errorf("NADs read %q, want %q", read, tt.wantRead)
			}
			got := applyPatch(t, pod, resp.Patch).Spec.Containers[0].Resources.Limits
			if want := limits("intel.com/sriov", tt.wantDevs); !sameList(got, want) {
				t.Errorf("limits %v, want %v", got, want)
			}
		})
	}
}

// applyPatch applies a JSON patch to the pod as the API server does.
func applyPatch(t *testing.T, pod *corev1.Pod, patch []byte) *corev1.Pod {
	t.Helper()
	p, err := jsonpatch.DecodePatch(patch)
	if err != nil {
		t.Fatalf("patch %s: %v", patch, err)
	}
	doc, _ := json.Marshal(pod)
	out, err := p.Apply(doc)
	if err != nil {
		t.Fatalf("apply patch %s: %v", patch, err)
	}
	var got corev1.Pod
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	return &got
}

func sameList(a, b corev1.ResourceList) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w, ok := b[k]
		if !ok || v.Cmp(w) != 0 {
			return false
		}
	}
	return true
}
