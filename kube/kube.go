// Package kube connects braid to the API server: clients from a kubeconfig,
// and the pod and NAD getters that the plan builder asks through.
package kube

import (
	"context"
	"fmt"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	nadclient "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/client/clientset/versioned"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Clients are the two typed clients braid uses.
type Clients struct {
	Core kubernetes.Interface
	NADs nadclient.Interface
}

// FromKubeconfig builds clients from a kubeconfig file. timeout bounds each
// request; the verb's own deadline bounds them all.
func FromKubeconfig(path string, timeout time.Duration) (*Clients, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig %s: %w", path, err)
	}
	return FromConfig(cfg, timeout)
}

// FromConfig builds clients from a rest config.
func FromConfig(cfg *rest.Config, timeout time.Duration) (*Clients, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.Timeout = timeout
	cfg.UserAgent = "braid"
	// A CNI call is short-lived; do not let client-side throttling queue it.
	cfg.QPS, cfg.Burst = 50, 100
	core, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("build core client for %s: %w", cfg.Host, err)
	}
	nads, err := nadclient.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("build NAD client for %s: %w", cfg.Host, err)
	}
	return &Clients{Core: core, NADs: nads}, nil
}

// GetPod reads a pod with a live GET.
func (c *Clients) GetPod(ctx context.Context, namespace, name string) (*corev1.Pod, error) {
	return c.Core.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
}

// GetNAD reads a NetworkAttachmentDefinition with a live GET.
func (c *Clients) GetNAD(ctx context.Context, namespace, name string) (*nadv1.NetworkAttachmentDefinition, error) {
	return c.NADs.K8sCniCncfIoV1().NetworkAttachmentDefinitions(namespace).Get(ctx, name, metav1.GetOptions{})
}
