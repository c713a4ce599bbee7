package webhook

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/braid-cni/braid/annotations"
	"github.com/braid-cni/braid/netconf"
)

func nadObject(t *testing.T, name, config string) runtime.RawExtension {
	t.Helper()
	return raw(t, &nadv1.NetworkAttachmentDefinition{
		TypeMeta:   metav1.TypeMeta{APIVersion: "k8s.cni.cncf.io/v1", Kind: "NetworkAttachmentDefinition"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns1"},
		Spec:       nadv1.NetworkAttachmentDefinitionSpec{Config: config},
	})
}

func podObject(t *testing.T, networks *string) runtime.RawExtension {
	t.Helper()
	pod := &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
	}
	if networks != nil {
		pod.Annotations = map[string]string{nadv1.NetworkAttachmentAnnot: *networks}
	}
	return raw(t, pod)
}

func raw(t *testing.T, obj any) runtime.RawExtension {
	t.Helper()
	data, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	return runtime.RawExtension{Raw: data}
}

func ptr(s string) *string { return &s }

// post sends body to a Handler and returns the HTTP status and the decoded
// review (zero when the status is not 200).
func post(t *testing.T, body []byte) (int, admissionv1.AdmissionReview) {
	t.Helper()
	rec := httptest.NewRecorder()
	h := &Handler{Log: slog.New(slog.DiscardHandler)}
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/validate", bytes.NewReader(body)))
	var review admissionv1.AdmissionReview
	if rec.Code == http.StatusOK {
		if err := json.Unmarshal(rec.Body.Bytes(), &review); err != nil {
			t.Fatalf("decode response %q: %v", rec.Body, err)
		}
	}
	return rec.Code, review
}

func TestHandler(t *testing.T) {
	const good = `{"cniVersion":"1.0.0","name":"blue","type":"bridge","bridge":"br-blue"}`
	tests := []struct {
		name     string
		resource metav1.GroupVersionResource
		op       admissionv1.Operation
		object   func(t *testing.T) runtime.RawExtension
		wantCode int32    // 0: allowed
		wantMsg  []string // substrings of the refusal
	}{
		{name: "good NAD", resource: nadResource, op: admissionv1.Create, object: func(t *testing.T) runtime.RawExtension { return nadObject(t, "blue", good) }},
		{
			name: "good conflist NAD without a name", resource: nadResource, op: admissionv1.Update,
			object: func(t *testing.T) runtime.RawExtension {
				return nadObject(t, "blue", `{"cniVersion":"1.0.0","plugins":[{"type":"bridge"},{"type":"tuning"}]}`)
			},
		},
		{name: "NAD with empty config (read from the node)", resource: nadResource, op: admissionv1.Create, object: func(t *testing.T) runtime.RawExtension { return nadObject(t, "blue", "  ") }},
		{
			name: "NAD with broken JSON", resource: nadResource, op: admissionv1.Create,
			object: func(t *testing.T) runtime.RawExtension {
				return nadObject(t, "blue", `{"cniVersion":"1.0.0","type":"bridge",}`)
			},
			wantCode: http.StatusForbidden, wantMsg: []string{"spec.config is not valid JSON: invalid character '}'"},
		},
		{
			name: "NAD updated to broken JSON", resource: nadResource, op: admissionv1.Update,
			object:   func(t *testing.T) runtime.RawExtension { return nadObject(t, "blue", `{"type":`) },
			wantCode: http.StatusForbidden, wantMsg: []string{"spec.config is not valid JSON: unexpected end of JSON input"},
		},
		{
			name: "NAD config not an object", resource: nadResource, op: admissionv1.Create,
			object:   func(t *testing.T) runtime.RawExtension { return nadObject(t, "blue", `null`) },
			wantCode: http.StatusForbidden, wantMsg: []string{"spec.config is not a JSON object"},
		},
		{
			name: "NAD conflist without plugins", resource: nadResource, op: admissionv1.Create,
			object: func(t *testing.T) runtime.RawExtension {
				return nadObject(t, "blue", `{"cniVersion":"1.0.0","name":"blue","plugins":[]}`)
			},
			wantCode: http.StatusForbidden, wantMsg: []string{"spec.config: ", "no plugins"},
		},
		{
			name: "NAD without type", resource: nadResource, op: admissionv1.Create,
			object: func(t *testing.T) runtime.RawExtension {
				return nadObject(t, "blue", `{"cniVersion":"1.0.0","name":"blue"}`)
			},
			wantCode: http.StatusForbidden, wantMsg: []string{"spec.config: ", "missing 'type'"},
		},
		{
			name: "NAD object that does not decode", resource: nadResource, op: admissionv1.Create,
			object: func(*testing.T) runtime.RawExtension {
				return runtime.RawExtension{Raw: []byte(`{"spec":{"config":3}}`)}
			},
			wantCode: http.StatusBadRequest, wantMsg: []string{"decode NetworkAttachmentDefinition"},
		},
		{
			name: "NAD running braid", resource: nadResource, op: admissionv1.Create,
			object: func(t *testing.T) runtime.RawExtension {
				return nadObject(t, "evil", `{"cniVersion":"1.0.0","name":"evil","type":"braid","binDir":"/tmp/x","logFile":"/etc/y"}`)
			},
			wantCode: http.StatusForbidden, wantMsg: []string{`spec.config: type is "braid", which is braid itself`},
		},
		{
			name: "NAD with braid-shim in a conflist", resource: nadResource, op: admissionv1.Update,
			object: func(t *testing.T) runtime.RawExtension {
				return nadObject(t, "evil", `{"cniVersion":"1.0.0","plugins":[{"type":"bridge"},{"type":"braid-shim","daemonSocketDir":"/tmp/x"}]}`)
			},
			wantCode: http.StatusForbidden, wantMsg: []string{`spec.config: plugins[1].type is "braid-shim"`},
		},
		{
			name: "NAD with braid as IPAM", resource: nadResource, op: admissionv1.Create,
			object: func(t *testing.T) runtime.RawExtension {
				return nadObject(t, "evil", `{"cniVersion":"1.0.0","name":"evil","type":"bridge","ipam":{"type":"braid"}}`)
			},
			wantCode: http.StatusForbidden, wantMsg: []string{`spec.config: ipam.type is "braid"`},
		},
		{
			name: "pod naming more networks than braid allows", resource: podResource, op: admissionv1.Create,
			object: func(t *testing.T) runtime.RawExtension {
				return podObject(t, ptr(strings.TrimSuffix(strings.Repeat("blue,", 33), ",")))
			},
			wantCode: http.StatusForbidden, wantMsg: []string{"33 networks requested, more than the 32 a pod may have (maxNetworksPerPod)"},
		},
		{
			name: "pod naming as many networks as braid allows", resource: podResource, op: admissionv1.Create,
			object: func(t *testing.T) runtime.RawExtension {
				names := make([]string, 32)
				for i := range names {
					names[i] = fmt.Sprintf("blue@n%d", i)
				}
				return podObject(t, ptr(strings.Join(names, ",")))
			},
		},
		{name: "NAD delete is not checked", resource: nadResource, op: admissionv1.Delete, object: func(*testing.T) runtime.RawExtension { return runtime.RawExtension{} }},
		{
			name: "pod with a bad skip-default-networks", resource: podResource, op: admissionv1.Create,
			object: func(t *testing.T) runtime.RawExtension {
				return raw(t, &corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
					ObjectMeta: metav1.ObjectMeta{Name: "web", Annotations: map[string]string{annotations.SkipDefaultNetworksKey: "yes"}}})
			},
			wantCode: http.StatusForbidden, wantMsg: []string{annotations.SkipDefaultNetworksKey, `"yes" is neither "true" nor "false"`},
		},
		{
			name: "pod skipping defaultNetworks", resource: podResource, op: admissionv1.Create,
			object: func(t *testing.T) runtime.RawExtension {
				return raw(t, &corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
					ObjectMeta: metav1.ObjectMeta{Name: "web", Annotations: map[string]string{annotations.SkipDefaultNetworksKey: "true"}}})
			},
		},
		{name: "pod without annotation", resource: podResource, op: admissionv1.Create, object: func(t *testing.T) runtime.RawExtension { return podObject(t, nil) }},
		{name: "pod, short form", resource: podResource, op: admissionv1.Create, object: func(t *testing.T) runtime.RawExtension { return podObject(t, ptr("blue, other/green@net5")) }},
		{
			name: "pod, JSON form", resource: podResource, op: admissionv1.Create,
			object: func(t *testing.T) runtime.RawExtension {
				return podObject(t, ptr(`[{"name":"blue","interface":"net1"},{"name":"blue","interface":"net2"}]`))
			},
		},
		{
			name: "pod, annotation does not parse", resource: podResource, op: admissionv1.Create,
			object:   func(t *testing.T) runtime.RawExtension { return podObject(t, ptr(`[{"name":"blue"`)) },
			wantCode: http.StatusForbidden, wantMsg: []string{"metadata.annotations[k8s.v1.cni.cncf.io/networks]: "},
		},
		{
			name: "pod, single JSON object", resource: podResource, op: admissionv1.Create,
			object:   func(t *testing.T) runtime.RawExtension { return podObject(t, ptr(`{"name":"blue"}`)) },
			wantCode: http.StatusForbidden, wantMsg: []string{"a JSON list of objects is required"},
		},
		{
			name: "pod names net1 twice", resource: podResource, op: admissionv1.Create,
			object: func(t *testing.T) runtime.RawExtension {
				return podObject(t, ptr(`[{"name":"blue","interface":"net1"},{"name":"green","interface":"net1"}]`))
			},
			wantCode: http.StatusForbidden, wantMsg: []string{`"net1" is already used by element 1`},
		},
		{
			name: "pod names net1 twice, short form", resource: podResource, op: admissionv1.Create,
			object:   func(t *testing.T) runtime.RawExtension { return podObject(t, ptr("blue@net1,green@net1")) },
			wantCode: http.StatusForbidden, wantMsg: []string{`"net1" is already used`},
		},
		{
			name: "pod names eth0", resource: podResource, op: admissionv1.Create,
			object:   func(t *testing.T) runtime.RawExtension { return podObject(t, ptr("blue@eth0")) },
			wantCode: http.StatusForbidden, wantMsg: []string{`"eth0" is the pod's main interface`},
		},
		{
			name: "pod update is not checked", resource: podResource, op: admissionv1.Update,
			object: func(t *testing.T) runtime.RawExtension { return podObject(t, ptr("blue@net1,green@net1")) },
		},
		{
			name: "pod object that does not decode", resource: podResource, op: admissionv1.Create,
			object:   func(*testing.T) runtime.RawExtension { return runtime.RawExtension{Raw: []byte(`{"metadata":[]}`)} },
			wantCode: http.StatusBadRequest, wantMsg: []string{"decode pod"},
		},
		{
			name: "wrong kind", resource: metav1.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}, op: admissionv1.Create,
			object:   func(*testing.T) runtime.RawExtension { return runtime.RawExtension{Raw: []byte(`{}`)} },
			wantCode: http.StatusBadRequest, wantMsg: []string{"does not validate apps/v1/deployments"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			review := admissionv1.AdmissionReview{
				TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
				Request: &admissionv1.AdmissionRequest{
					UID: "uid-1", Resource: tt.resource, Operation: tt.op,
					Namespace: "ns1", Name: "x", Object: tt.object(t),
				},
			}
			body, err := json.Marshal(review)
			if err != nil {
				t.Fatal(err)
			}
			code, got := post(t, body)
			if code != http.StatusOK {
				t.Fatalf("HTTP %d, want 200", code)
			}
			if got.APIVersion != "admission.k8s.io/v1" || got.Kind != "AdmissionReview" {
				t.Errorf("response type %s %s, want admission.k8s.io/v1 AdmissionReview", got.APIVersion, got.Kind)
			}
			resp := got.Response
			if resp == nil || resp.UID != "uid-1" {
				t.Fatalf("response %+v, want one for uid-1", resp)
			}
			if tt.wantCode == 0 {
				if !resp.Allowed {
					t.Errorf("refused: %+v, want allowed", resp.Result)
				}
				return
			}
			if resp.Allowed || resp.Result == nil {
				t.Fatalf("allowed, want refused with %d", tt.wantCode)
			}
			if resp.Result.Code != tt.wantCode {
				t.Errorf("code %d, want %d (%s)", resp.Result.Code, tt.wantCode, resp.Result.Message)
			}
			for _, m := range tt.wantMsg {
				if !strings.Contains(resp.Result.Message, m) {
					t.Errorf("message %q does not contain %q", resp.Result.Message, m)
				}
			}
		})
	}
}

// TestHandlerBadRequests: what is not an AdmissionReview is an HTTP error,
// never an allowed review.
func TestHandlerBadRequests(t *testing.T) {
	tests := []struct {
		name string
		body string
	}{
		{"not JSON", "hello"},
		{"no request", `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`},
		{"truncated", `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"1"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if code, _ := post(t, []byte(tt.body)); code != http.StatusBadRequest {
				t.Errorf("HTTP %d, want 400", code)
			}
		})
	}
	t.Run("GET", func(t *testing.T) {
		rec := httptest.NewRecorder()
		(&Handler{Log: slog.New(slog.DiscardHandler)}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/validate", nil))
		if rec.Code != http.StatusMethodNotAllowed {
			t.Errorf("HTTP %d, want 405", rec.Code)
		}
	})
}

// TestHandlerBraidSettings: the pod checks follow braid's settings on the
// nodes: namespace isolation and maxNetworksPerPod.
func TestHandlerBraidSettings(t *testing.T) {
	tests := []struct {
		name     string
		braid    *netconf.NetConf
		networks string
		wantMsg  string // "": allowed
	}{
		{"isolation off: any namespace", nil, "other/blue", ""},
		{"isolation: own namespace", &netconf.NetConf{NamespaceIsolation: true}, "blue, ns1/green", ""},
		{"isolation: default is global", &netconf.NetConf{NamespaceIsolation: true}, "default/blue", ""},
		{"isolation: another namespace", &netconf.NetConf{NamespaceIsolation: true}, "blue, other/green", `network other/green: namespace isolation: a pod in "ns1" may not use networks of namespace "other"`},
		{"isolation: a global namespace", &netconf.NetConf{NamespaceIsolation: true, GlobalNamespaces: "other"}, "other/green", ""},
		{"a lower limit", &netconf.NetConf{MaxNetworksPerPod: 2}, "a, b, c", "3 networks requested, more than the 2 a pod may have"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &Handler{Log: slog.New(slog.DiscardHandler), Braid: tt.braid}
			resp := h.review(&admissionv1.AdmissionRequest{
				UID: "uid-1", Resource: podResource, Operation: admissionv1.Create,
				Namespace: "ns1", Name: "web", Object: podObject(t, ptr(tt.networks)),
			})
			switch {
			case tt.wantMsg == "" && !resp.Allowed:
				t.Errorf("refused: %+v, want allowed", resp.Result)
			case tt.wantMsg != "" && (resp.Allowed || !strings.Contains(resp.Result.Message, tt.wantMsg)):
				t.Errorf("answer %+v, want refused with %q", resp.Result, tt.wantMsg)
			}
		})
	}
}
