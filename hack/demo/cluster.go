package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/braid-cni/braid/e2e/framework"
)

// startControlPlane starts etcd and kube-apiserver, installs the NAD CRD and
// braid's RBAC, and writes braid's least-privilege kubeconfig.
func (d *demo) startControlPlane(ctx context.Context) error {
	start := time.Now()
	cp, err := framework.StartControlPlane(ctx, framework.Options{WorkDir: filepath.Join(d.dir, "control-plane")})
	if err != nil {
		return err
	}
	d.cp = cp
	d.onCleanup("stop control plane", func(context.Context) error { cp.Stop(); return nil })
	fmt.Fprintf(d.out, "control plane: etcd and kube-apiserver ready at %s in %v\n", cp.AdminConfig().Host, since(start))
	if d.kube, d.nads, err = cp.Clients(); err != nil {
		return err
	}
	if err := framework.InstallNADCRD(ctx, cp.AdminConfig()); err != nil {
		return err
	}
	if err := framework.EnsureObjects(ctx, cp.AdminConfig(), filepath.Join(d.root, "deployments", "rbac.yaml")); err != nil {
		return err
	}
	if err := cp.WriteKubeconfig(d.kubeconfig(), false); err != nil {
		return err
	}
	fmt.Fprintf(d.out, "control plane: NAD CRD installed, deployments/rbac.yaml applied, braid's kubeconfig in %s\n", d.kubeconfig())
	return nil
}

func (d *demo) kubeconfig() string {
	return filepath.Join(d.dir, "braid.d", "braid.kubeconfig")
}

// applyExamples creates the example NADs, then the example pods, in
// "default". No kubelet runs the pods: they are API objects for braid to read.
func (d *demo) applyExamples(ctx context.Context) error {
	if err := framework.CreateNamespaceWithSA(ctx, d.kube, metav1.NamespaceDefault); err != nil {
		return err
	}
	d.onCleanup("delete example pods and NADs", func(ctx context.Context) error {
		return framework.DeleteNamespaceObjects(ctx, d.kube, d.nads, metav1.NamespaceDefault)
	})
	fmt.Fprintln(d.out)
	for _, pattern := range []string{"nad-*.yaml", "pod-*.yaml"} {
		files, _ := filepath.Glob(filepath.Join(d.root, "examples", pattern)) // the pattern is valid
		if len(files) == 0 {
			return fmt.Errorf("apply examples/%s: no such file", pattern)
		}
		for _, f := range files {
			if err := framework.EnsureObjects(ctx, d.cp.AdminConfig(), f); err != nil {
				return err
			}
			fmt.Fprintf(d.out, "applied examples/%s\n", filepath.Base(f))
		}
	}
	return nil
}
