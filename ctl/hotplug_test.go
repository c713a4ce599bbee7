package ctl

import (
	"context"
	"slices"
	"testing"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// status is network-status of (interface, network) pairs.
func status(pairs ...string) []nadv1.NetworkStatus {
	var out []nadv1.NetworkStatus
	for i := 0; i < len(pairs); i += 2 {
		out = append(out, nadv1.NetworkStatus{Interface: pairs[i], Name: pairs[i+1]})
	}
	return out
}

func TestWithNetwork(t *testing.T) {
	tests := []struct {
		current, network, want string
	}{
		{"", "blue", "ns/blue"},
		{"blue", "other/green@g0", "ns/blue, other/green@g0"},
		{" blue , red@r1", "blue", "ns/blue, ns/red@r1, ns/blue"},
		{`[{"name":"blue","ips":["10.1.1.5/24"]}]`, "green@g0", `[{"name":"blue","ips":["10.1.1.5/24"]},{"interface":"g0","name":"green","namespace":"ns"}]`},
	}
	for _, tt := range tests {
		got, err := WithNetwork(tt.current, "ns", tt.network)
		if err != nil || got != tt.want {
			t.Errorf("WithNetwork(%q, %q) = %q, %v; want %q", tt.current, tt.network, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "a,b", "bad name", "a@"} {
		if got, err := WithNetwork("blue", "ns", bad); err == nil {
			t.Errorf("WithNetwork(%q) = %q, want an error", bad, got)
		}
	}
}

func TestWithoutInterface(t *testing.T) {
	tests := []struct {
		name     string
		current  string
		statuses []nadv1.NetworkStatus
		ifName   string
		want     string
		wantErr  bool
	}{
		{name: "named", current: "blue, green@g0", statuses: status("eth0", "cluster", "net1", "ns/blue", "g0", "ns/green"), ifName: "g0", want: "ns/blue"},
		{name: "the only one", current: "blue", statuses: status("eth0", "cluster", "net1", "ns/blue"), ifName: "net1", want: ""},
		{name: "second unnamed of a network", current: "blue, blue, green", statuses: status("eth0", "cluster", "net1", "ns/blue", "net2", "ns/blue", "net3", "ns/green"), ifName: "net2", want: "ns/blue, ns/green"},
		{name: "unnamed after a named one of the same network", current: "blue@b0, blue", statuses: status("eth0", "cluster", "b0", "ns/blue", "net2", "ns/blue"), ifName: "net2", want: "ns/blue@b0"},
		{name: "JSON form", current: `[{"name":"blue","mac":"02:00:00:00:00:01"},{"name":"green"}]`, statuses: status("eth0", "cluster", "net1", "ns/blue", "net2", "ns/green"), ifName: "net1", want: `[{"name":"green"}]`},
		{name: "not in network-status", current: "blue", statuses: status("eth0", "cluster", "net1", "ns/blue"), ifName: "net7", wantErr: true},
		{name: "the cluster network", current: "blue", statuses: status("eth0", "cluster", "net1", "ns/blue"), ifName: "eth0", wantErr: true},
		{name: "a default network", current: "blue", statuses: status("eth0", "cluster", "net1", "kube-system/dflt", "net2", "ns/blue"), ifName: "net1", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := WithoutInterface(tt.current, "ns", tt.statuses, tt.ifName)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("WithoutInterface = %q, %v; want %q (error: %v)", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestPending(t *testing.T) {
	tests := []struct {
		name     string
		current  string
		statuses []nadv1.NetworkStatus
		want     []string
	}{
		{"in line", "blue, green@g0", status("eth0", "cluster", "net1", "ns/blue", "g0", "ns/green"), nil},
		{"one to add", "blue, green", status("eth0", "cluster", "net1", "ns/blue"), []string{"add ns/green"}},
		{"one to remove", "green", status("eth0", "cluster", "net1", "ns/blue", "net2", "ns/green"), nil},
		{"a second of one network to remove", "blue", status("eth0", "cluster", "net1", "ns/blue", "net2", "ns/blue"), []string{"remove net2 (ns/blue)"}},
		{"renamed", "blue@b0", status("eth0", "cluster", "net1", "ns/blue"), []string{"add ns/blue@b0", "remove net1 (ns/blue)"}},
		{"a default network is not the annotation's", "", status("eth0", "cluster", "net1", "kube-system/dflt"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Pending(tt.current, "ns", tt.statuses)
			if err != nil || !slices.Equal(got, tt.want) {
				t.Errorf("Pending = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// TestNewWarning: braid's Warning that is new since the patch, or came
// again, is the answer; older ones and other components' Warnings are not.
func TestNewWarning(t *testing.T) {
	event := func(name, reason string, count int32) *corev1.Event {
		return &corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name},
			InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "ns", Name: "web", UID: "uid-1"},
			Type:           corev1.EventTypeWarning, Reason: reason, Message: name, Count: count}
	}
	ctx := context.Background()
	client := fake.NewClientset(event("kubelet", "MissingClusterDNS", 1), event("old", "NetworkNotReady", 3))
	seen, err := braidWarnings(ctx, client, "ns", "web")
	if err != nil || len(seen) != 1 || seen["old"] != 3 {
		t.Fatalf("braidWarnings = %v, %v; want old seen 3 times", seen, err)
	}
	if _, err := client.CoreV1().Events("ns").Update(ctx, event("kubelet", "MissingClusterDNS", 2), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if got, err := newWarning(ctx, client, "ns", "web", seen); err != nil || got != nil {
		t.Errorf("newWarning = %+v, %v; want none of braid's since the patch", got, err)
	}
	if _, err := client.CoreV1().Events("ns").Create(ctx, event("new", "AddFailed", 1), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if got, err := newWarning(ctx, client, "ns", "web", seen); err != nil || got == nil || got.Message != "new" {
		t.Errorf("newWarning = %+v, %v; want braid's new AddFailed", got, err)
	}
	if err := client.CoreV1().Events("ns").Delete(ctx, "new", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().Events("ns").Update(ctx, event("old", "NetworkNotReady", 4), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if got, err := newWarning(ctx, client, "ns", "web", seen); err != nil || got == nil || got.Message != "old" {
		t.Errorf("newWarning = %+v, %v; want the Warning that came again", got, err)
	}
}

// TestLastAnswered: attach is done when network-status has an interface
// for the selection it added, not when some other interface appeared (a
// status written for an earlier change).
func TestLastAnswered(t *testing.T) {
	for _, tc := range []struct {
		value    string
		statuses []nadv1.NetworkStatus
		want     bool
	}{
		{"green, late, blue@b0", status("eth0", "cluster", "net2", "ns1/green", "net1", "ns1/late"), false},
		{"green, late, blue@b0", status("eth0", "cluster", "net2", "ns1/green", "net1", "ns1/late", "b0", "ns1/blue"), true},
		{"green, green", status("eth0", "cluster", "net1", "ns1/green"), false},
		{"green, green", status("eth0", "cluster", "net1", "ns1/green", "net2", "ns1/green"), true},
		{`[{"name":"green"},{"name":"blue","namespace":"ns2"}]`, status("eth0", "cluster", "net1", "ns1/green", "net2", "ns1/blue"), false},
		{"", status("eth0", "cluster"), false},
	} {
		if got := LastAnswered(tc.value, "ns1", tc.statuses); got != tc.want {
			t.Errorf("LastAnswered(%q, %v) = %v, want %v", tc.value, tc.statuses, got, tc.want)
		}
	}
}
