package node

import (
	"path/filepath"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestUninstall runs last (Go runs test files in name order, and this one
// sorts last): deleting the DaemonSet restores the node's own CNI config.
func TestUninstall(t *testing.T) {
	client, _, err := shared.cp.Clients()
	if err != nil {
		t.Fatal(err)
	}
	if err := client.AppsV1().DaemonSets("kube-system").Delete(t.Context(), "braid", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := waitFile(t.Context(), filepath.Join(hostConfDir, braidFile), false, 60*time.Second); err != nil {
		t.Fatalf("braid's config stayed after the DaemonSet was deleted: %v", err)
	}
	if err := waitFile(t.Context(), filepath.Join(hostConfDir, primaryFile), true, time.Second); err != nil {
		t.Errorf("the node's own config is gone: %v", err)
	}
}
