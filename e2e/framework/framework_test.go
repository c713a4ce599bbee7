package framework

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	rbacv1 "k8s.io/api/rbac/v1"
)

func TestModuleName(t *testing.T) {
	tests := []struct {
		name, gomod, want string
	}{
		{"plain", "module github.com/braid-cni/braid\n\ngo 1.24\n", modulePath},
		{"quoted", "// c\nmodule \"example.com/x\"\n", "example.com/x"},
		{"none", "go 1.24\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := moduleName([]byte(tt.gomod)); got != tt.want {
				t.Errorf("moduleName() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRepoRoot(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "deployments", "crd.yaml")); err != nil {
		t.Errorf("RepoRoot() = %s, which lacks deployments/crd.yaml: %v", root, err)
	}
}

func TestResolveNamesMissingBinaries(t *testing.T) {
	_, err := Options{APIServerPath: "/nonexistent/kube-apiserver", EtcdPath: "/nonexistent/etcd"}.Resolve()
	if err == nil {
		t.Fatal("Resolve() with missing binaries: got no error")
	}
	for _, want := range []string{"kube-apiserver", "etcd"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Resolve() error %q does not name %s", err, want)
		}
	}
}

func TestDecodeDeployments(t *testing.T) {
	objs, err := decodeFile(filepath.Join("..", "..", "deployments", "rbac.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 3 {
		t.Fatalf("rbac.yaml decoded to %d objects, want 3", len(objs))
	}
	if _, ok := objs[1].(*rbacv1.ClusterRole); !ok {
		t.Errorf("second object of rbac.yaml is %T, want *rbacv1.ClusterRole", objs[1])
	}
	for file, want := range map[string]string{"crd.yaml": "*v1.CustomResourceDefinition", "daemonset-thin.yaml": "*v1.DaemonSet"} {
		objs, err := decodeFile(filepath.Join("..", "..", "deployments", file))
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprintf("%T", objs[0]); got != want {
			t.Errorf("first object of %s is %s, want %s", file, got, want)
		}
	}
	objs, err = decodeFile(filepath.Join("..", "..", "deployments", "policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for i, o := range objs {
		want := "*v1.ValidatingAdmissionPolicy"
		if i%2 == 1 {
			want += "Binding"
		}
		if got := fmt.Sprintf("%T", o); got != want {
			t.Errorf("object %d of policy.yaml is %s, want %s", i+1, got, want)
		}
	}
	manifest := "# only a comment\n---\napiVersion: k8s.cni.cncf.io/v1\nkind: NetworkAttachmentDefinition\n" +
		"metadata:\n  name: net1\nspec:\n  config: '{}'\n---\n"
	path := filepath.Join(t.TempDir(), "nad.yaml")
	if err := os.WriteFile(path, []byte(manifest), 0o600); err != nil {
		t.Fatal(err)
	}
	objs, err = decodeFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 1 {
		t.Fatalf("decoded %d objects, want 1 (comment-only documents are skipped)", len(objs))
	}
	if nad, ok := objs[0].(*nadv1.NetworkAttachmentDefinition); !ok || nad.Spec.Config != "{}" {
		t.Errorf("decoded %#v, want a NetworkAttachmentDefinition with config {}", objs[0])
	}
}

// TestStartFailureReportsLog starts a fake API server that exits at once: the
// error must come quickly, carry its log, and etcd must be stopped again.
func TestStartFailureReportsLog(t *testing.T) {
	RequireTools(t)
	fake := filepath.Join(t.TempDir(), "kube-apiserver")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\necho 'fake apiserver gives up'\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cp, err := StartControlPlane(ctx, Options{APIServerPath: fake})
	if err == nil {
		cp.Stop()
		t.Fatal("StartControlPlane with a failing API server: got no error")
	}
	for _, want := range []string{"exited", "fake apiserver gives up"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}
