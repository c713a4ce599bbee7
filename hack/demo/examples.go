package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/braid-cni/braid/e2e/framework"
)

const (
	podTimeout = 90 * time.Second
	// workloadPort serves the workload's /interfaces and /dial.
	workloadPort = 8080
)

// addVeth creates the macvlan master of examples/nad-macvlan.yaml, a veth
// pair standing in for a host NIC. preflight refused a leftover one: adopting
// it, down would delete a link the demo did not make.
func (d *demo) addVeth(context.Context) error {
	la := netlink.NewLinkAttrs()
	la.Name = macvlanMaster
	if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: la, PeerName: macvlanPeer}); err != nil {
		return fmt.Errorf("create veth %s: %w", macvlanMaster, err)
	}
	for _, name := range []string{macvlanMaster, macvlanPeer} {
		link, err := netlink.LinkByName(name)
		if err == nil {
			err = netlink.LinkSetUp(link)
		}
		if err != nil {
			return fmt.Errorf("set link %s up: %w", name, err)
		}
	}
	d.step("veth %s (peer %s) created as the macvlan master of examples/nad-macvlan.yaml", macvlanMaster, macvlanPeer)
	return nil
}

// applyExamples applies examples/nad-*.yaml as they are, then creates the
// pods of examples/pod-*.yaml running the workload image (see examplePod),
// and waits until they run.
func (d *demo) applyExamples(ctx context.Context) error {
	nads, _ := filepath.Glob(filepath.Join(d.root, "examples", "nad-*.yaml")) // the pattern is valid
	pods, _ := filepath.Glob(filepath.Join(d.root, "examples", "pod-*.yaml"))
	if len(nads) == 0 || len(pods) == 0 {
		return errors.New("apply examples: no examples/nad-*.yaml or examples/pod-*.yaml")
	}
	for _, f := range nads {
		if err := framework.EnsureObjects(ctx, d.cp.AdminConfig(), f); err != nil {
			return err
		}
	}
	for _, f := range pods {
		pod, err := examplePod(f)
		if err != nil {
			return err
		}
		d.st.Pods = append(d.st.Pods, pod.Namespace+"/"+pod.Name)
		if err := d.save(); err != nil {
			return err
		}
		if _, err := d.kube.CoreV1().Pods(pod.Namespace).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create pod %s/%s from %s: %w", pod.Namespace, pod.Name, filepath.Base(f), err)
		}
	}
	d.step("applied %s; created the pods of %s", strings.Join(baseNames(nads), ", "), strings.Join(baseNames(pods), ", "))
	for _, ref := range d.st.Pods {
		ns, name := splitRef(ref)
		if _, err := framework.WaitForPod(ctx, d.kube, ns, name, podTimeout, framework.PodRunning()); err != nil {
			return err
		}
	}
	d.step("example pods Running: %s", strings.Join(d.st.Pods, ", "))
	return nil
}

// examplePod reads a pod of examples/ and makes its container run the
// workload image, which reports the pod's interfaces over HTTP; the node has
// no registry, so it must not be pulled.
func examplePod(path string) (*corev1.Pod, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read example pod: %w", err)
	}
	var pod corev1.Pod
	if err := yaml.UnmarshalStrict(data, &pod); err != nil {
		return nil, fmt.Errorf("decode example pod %s: %w", path, err)
	}
	if pod.Namespace == "" {
		pod.Namespace = metav1.NamespaceDefault
	}
	if len(pod.Spec.Containers) != 1 {
		return nil, fmt.Errorf("example pod %s: want one container, have %d", path, len(pod.Spec.Containers))
	}
	c := &pod.Spec.Containers[0]
	c.Image, c.ImagePullPolicy, c.Command, c.Args = workloadImage, corev1.PullNever, nil, nil
	c.Ports = []corev1.ContainerPort{{Name: "http", ContainerPort: workloadPort}}
	return &pod, nil
}

func baseNames(paths []string) []string {
	names := make([]string, len(paths))
	for i, p := range paths {
		names[i] = "examples/" + filepath.Base(p)
	}
	return names
}

// splitRef splits namespace/name.
func splitRef(ref string) (string, string) {
	ns, name, _ := strings.Cut(ref, "/")
	return ns, name
}
