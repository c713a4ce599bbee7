package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/plugins/pkg/testutils"
	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/braid-cni/braid/e2e/framework"
)

// attachPods runs braid ADD for every pod in "default", in name order.
func (d *demo) attachPods(ctx context.Context) error {
	pods, err := d.kube.CoreV1().Pods(metav1.NamespaceDefault).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list pods in default: %w", err)
	}
	for i := range pods.Items {
		if err := d.attachPod(ctx, &pods.Items[i]); err != nil {
			return err
		}
	}
	return nil
}

// attachPod gives the pod a network namespace, calls braid ADD through
// libcni with the arguments a Kubernetes runtime passes, then shows what the
// pod got. DEL is registered before ADD: it also undoes a failed ADD.
func (d *demo) attachPod(ctx context.Context, pod *corev1.Pod) error {
	netns, err := testutils.NewNS()
	if err != nil {
		return fmt.Errorf("create netns for pod %s: %w", pod.Name, err)
	}
	nsName := filepath.Base(netns.Path())
	d.onCleanup("delete netns "+nsName, func(context.Context) error {
		_ = netns.Close() // only the file descriptor; UnmountNS removes the namespace
		return testutils.UnmountNS(netns)
	})
	rt := runtimeConf(pod, netns.Path())
	d.onCleanup("braid DEL for pod "+pod.Name, func(ctx context.Context) error { return d.cni.DelNetworkList(ctx, d.list, rt) })
	fmt.Fprintf(d.out, "\n=== pod %s/%s in netns %s\n", pod.Namespace, pod.Name, nsName)
	start := time.Now()
	res, err := d.cni.AddNetworkList(ctx, d.list, rt)
	if err != nil {
		return fmt.Errorf("braid ADD for pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	fmt.Fprintf(d.out, "braid ADD took %v\n", since(start))
	for _, args := range [][]string{{"-brief", "address"}, {"route"}} {
		out, err := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", nsName, "ip"}, args...)...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("ip %s in netns %s: %w: %s", strings.Join(args, " "), nsName, err, out)
		}
		fmt.Fprintf(d.out, "--- ip %s:\n%s", strings.Join(args, " "), out)
	}
	merged, _ := json.MarshalIndent(res, "", "  ") // a result from libcni always encodes
	fmt.Fprintf(d.out, "--- merged CNI result:\n%s\n", merged)
	return d.showNetworkStatus(ctx, pod)
}

// runtimeConf is what containerd passes for a pod sandbox.
func runtimeConf(pod *corev1.Pod, netnsPath string) *libcni.RuntimeConf {
	return framework.SandboxConf(pod, "braid-demo-"+pod.Name, netnsPath)
}

// showNetworkStatus prints the network-status annotation braid recorded.
func (d *demo) showNetworkStatus(ctx context.Context, pod *corev1.Pod) error {
	got, err := d.kube.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("get pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	var status bytes.Buffer
	if err := json.Indent(&status, []byte(got.Annotations[nadv1.NetworkStatusAnnot]), "", "  "); err != nil {
		return fmt.Errorf("network-status of pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	fmt.Fprintf(d.out, "--- %s, read back from the API server:\n%s\n", nadv1.NetworkStatusAnnot, status.String())
	return nil
}
