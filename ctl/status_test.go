package ctl

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/braid-cni/braid/kube"
)

const statusAnnotation = `[
 {"name": "cluster", "interface": "eth0", "ips": ["10.244.0.5", "fd00::5"], "mac": "0a:58:0a:f4:00:05", "default": true, "dns": {}, "gateway": ["10.244.0.1"]},
 {"name": "ns/blue", "interface": "net1", "ips": ["10.1.0.7"], "mac": "02:11:22:33:44:55", "dns": {}},
 {"name": "ns/sriov", "interface": "net2", "dns": {}, "device-info": {"type": "pci", "version": "1.1.0", "pci": {"pci-address": "0000:03:00.1", "pf-pci-address": "0000:03:00.0"}}}
]`

func statusClients() *kube.Clients {
	pod := func(name string, ann map[string]string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, Annotations: ann}}
	}
	return &kube.Clients{Core: fake.NewClientset(
		pod("attached", map[string]string{nadv1.NetworkStatusAnnot: statusAnnotation}),
		pod("pending", nil),
		pod("garbled", map[string]string{nadv1.NetworkStatusAnnot: "[{"}),
	)}
}

// TestStatusTable: the table of a pod's network-status, with DEVICE-INFO
// because one interface has device info; golden.
func TestStatusTable(t *testing.T) {
	var out bytes.Buffer
	o := &options{Streams: Streams{Out: &out}, output: outputTable}
	if err := runStatus(t.Context(), o, statusClients(), "ns", "attached"); err != nil {
		t.Fatal(err)
	}
	golden(t, "status/attached.golden", out.Bytes())
}

// TestStatusNoDeviceInfo: without device info the column is left out.
func TestStatusNoDeviceInfo(t *testing.T) {
	var out bytes.Buffer
	statuses := []nadv1.NetworkStatus{{Name: "cluster", Interface: "eth0", IPs: []string{"10.0.0.2"}, Default: true}}
	if err := WriteNetworkStatus(&out, statuses); err != nil {
		t.Fatal(err)
	}
	want := "INTERFACE  NETWORK  IPS       MAC  DEFAULT\neth0       cluster  10.0.0.2  -    yes\n"
	if out.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", out.String(), want)
	}
}

// TestStatusJSON: -o json prints the statuses as the annotation holds them.
func TestStatusJSON(t *testing.T) {
	var out bytes.Buffer
	o := &options{Streams: Streams{Out: &out}, output: outputJSON}
	if err := runStatus(t.Context(), o, statusClients(), "ns", "attached"); err != nil {
		t.Fatal(err)
	}
	var got, want []nadv1.NetworkStatus
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(statusAnnotation), &want); err != nil {
		t.Fatal(err)
	}
	gotJSON, _ := json.Marshal(got)
	wantJSON, _ := json.Marshal(want)
	if !bytes.Equal(gotJSON, wantJSON) {
		t.Errorf("-o json:\n%s\nwant:\n%s", gotJSON, wantJSON)
	}
}

// TestStatusErrors: no annotation, a garbled one and a missing pod are
// errors that say which.
func TestStatusErrors(t *testing.T) {
	tests := []struct {
		pod  string
		want string
	}{
		{"pending", "pod ns/pending: no k8s.v1.cni.cncf.io/network-status annotation"},
		{"garbled", "pod ns/garbled: annotation k8s.v1.cni.cncf.io/network-status"},
		{"gone", `get pod ns/gone: pods "gone" not found`},
	}
	for _, tt := range tests {
		_, err := PodNetworkStatus(t.Context(), statusClients(), "ns", tt.pod)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("pod %s: error %v, want %q", tt.pod, err, tt.want)
		}
		if tt.pod == "pending" && !errors.Is(err, ErrNoNetworkStatus) {
			t.Errorf("pod %s: error %v is not ErrNoNetworkStatus", tt.pod, err)
		}
	}
}

// TestStatusCommandNeedsAPod: without a pod name, exit 1 with a message.
func TestStatusCommandNeedsAPod(t *testing.T) {
	stdout, stderr, code := runMain("status")
	if code != 1 || stdout != "" || !strings.Contains(stderr, "accepts 1 arg") {
		t.Errorf("status without a pod: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}
