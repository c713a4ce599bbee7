package e2e

import (
	"strings"
	"testing"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestFailureEvents: a failed ADD leaves a Warning event on the pod that
// names the interface, the network, the plugin type and the delegate's own
// message, so kubectl describe pod tells why; a refused plan (a missing
// NAD) leaves one naming the NAD. braidd sends its events in the
// background, so they are polled for.
func TestFailureEvents(t *testing.T) {
	inModes(t, func(t *testing.T, mode string) {
		tests := []struct {
			name     string
			networks string
			reason   string
			want     []string // substrings of one Warning event's message
		}{
			{
				// Not an invalid subnet: the reference plugins refuse
				// that on DEL as well, and the runtime's DEL would fail.
				name:     "master link missing",
				networks: "nomaster",
				reason:   "AddFailed",
				want:     []string{"add net1 (", "/nomaster, macvlan): ", "Link not found"},
			},
			{
				name:     "plugin not installed",
				networks: "noplugin",
				reason:   "AddFailed",
				want:     []string{"add net1 (", "/noplugin, nosuchplugin): ", "not found"},
			},
			{
				name:     "missing NAD",
				networks: "nosuch",
				reason:   "NetworkNotReady",
				want:     []string{"/nosuch", "not found"},
			},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				n := newNode(t, mode, "1.0.0")
				n.createNAD(n.namespace, "nomaster", map[string]any{
					"cniVersion": "1.0.0", "name": "nomaster", "type": "macvlan", "master": "nosuchlink0",
					"ipam": map[string]any{"type": "host-local", "dataDir": n.dataDir, "ranges": []any{[]any{map[string]any{"subnet": n.subnet(5)}}}},
				})
				n.createNAD(n.namespace, "noplugin", map[string]any{"cniVersion": "1.0.0", "name": "noplugin", "type": "nosuchplugin"})
				pod := n.createPod("bad", map[string]string{nadv1.NetworkAttachmentAnnot: tt.networks})
				sb := n.sandbox(pod)
				if _, err := sb.add(); err == nil {
					t.Fatal("ADD succeeded, want an error")
				}
				ev := waitWarning(t, n, pod.Name, tt.reason)
				for _, w := range tt.want {
					if !strings.Contains(ev.Message, w) {
						t.Errorf("%s event %q does not mention %q", tt.reason, ev.Message, w)
					}
				}
				if ev.InvolvedObject.UID != pod.UID {
					t.Errorf("event on pod UID %s, want %s", ev.InvolvedObject.UID, pod.UID)
				}
				sb.mustDel()
			})
		}
	})
}

// waitWarning waits up to 30 s for a Warning event with reason on pod.
func waitWarning(t *testing.T, n *node, pod, reason string) corev1.Event {
	t.Helper()
	var seen []string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		events, err := n.kube.CoreV1().Events(n.namespace).List(t.Context(), metav1.ListOptions{FieldSelector: "involvedObject.name=" + pod})
		if err != nil {
			t.Fatal(err)
		}
		seen = seen[:0]
		for _, e := range events.Items {
			if e.Type == corev1.EventTypeWarning && e.Reason == reason {
				return e
			}
			seen = append(seen, e.Type+" "+e.Reason+": "+e.Message)
		}
	}
	t.Fatalf("no Warning %s event on pod %s; events: %q", reason, pod, seen)
	return corev1.Event{}
}
