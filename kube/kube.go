// Package kube connects braid to the API server: clients from a kubeconfig,
// the pod and NAD getters that the plan builder asks through, braidd's
// informer caches, and the question braidd asks at exit (is its DaemonSet
// gone: an uninstall?).
package kube

import (
	"context"
	"fmt"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	nadclient "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/client/clientset/versioned"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
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

// FromConfig builds clients from a rest config. timeout bounds each request;
// 0 leaves that to each call's context, as informers need: their watches
// run for minutes, and a client timeout would cut them off.
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

// fromWatchCache asks the API server for its watch cache's copy
// (resourceVersion "0"): no etcd round trip, and at most a moment behind.
func fromWatchCache() metav1.GetOptions { return metav1.GetOptions{ResourceVersion: "0"} }

// GetPod reads a pod from the API server's watch cache, and with a quorum
// read when the watch cache does not have it yet (a pod created a moment
// ago). A caller that finds the pod stale (another UID) re-reads it with
// FreshPod.
func (c *Clients) GetPod(ctx context.Context, namespace, name string) (*corev1.Pod, error) {
	pod, err := c.Core.CoreV1().Pods(namespace).Get(ctx, name, fromWatchCache())
	if apierrors.IsNotFound(err) {
		return c.FreshPod(ctx, namespace, name)
	}
	return pod, err
}

// FreshPod reads a pod with a quorum read, as current as etcd.
func (c *Clients) FreshPod(ctx context.Context, namespace, name string) (*corev1.Pod, error) {
	return c.Core.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
}

// GetNAD reads a NetworkAttachmentDefinition like GetPod reads a pod: from
// the watch cache, else (a NAD created a moment ago) with a quorum read.
func (c *Clients) GetNAD(ctx context.Context, namespace, name string) (*nadv1.NetworkAttachmentDefinition, error) {
	nads := c.NADs.K8sCniCncfIoV1().NetworkAttachmentDefinitions(namespace)
	nad, err := nads.Get(ctx, name, fromWatchCache())
	if apierrors.IsNotFound(err) {
		return nads.Get(ctx, name, metav1.GetOptions{})
	}
	return nad, err
}

// Uninstalling reports whether the DaemonSet that runs the pod
// namespace/name is gone or being deleted: braid is being uninstalled from
// the node, not restarted or updated. A pod that no DaemonSet controls is
// never being uninstalled this way. Errors name the object they could not
// read; the caller decides what an unknown answer means.
func (c *Clients) Uninstalling(ctx context.Context, namespace, name string) (bool, error) {
	pod, err := c.FreshPod(ctx, namespace, name)
	if err != nil {
		return false, fmt.Errorf("read braid's own pod %s/%s: %w", namespace, name, err)
	}
	owner := metav1.GetControllerOf(pod)
	if owner == nil || owner.Kind != "DaemonSet" {
		return false, nil
	}
	ds, err := c.Core.AppsV1().DaemonSets(namespace).Get(ctx, owner.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("read the DaemonSet %s/%s of braid's pod %s: %w", namespace, owner.Name, name, err)
	}
	// Another DaemonSet by that name since: ours is gone.
	return ds.DeletionTimestamp != nil || ds.UID != owner.UID, nil
}
