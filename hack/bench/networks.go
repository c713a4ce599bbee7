package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	"github.com/vishvananda/netlink"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// nadName and nadBridge name secondary network i (1-based).
func nadName(i int) string   { return fmt.Sprintf("net-%d", i) }
func nadBridge(i int) string { return fmt.Sprintf("brb%d", i) }

// writeNetworks writes the cluster network's conflist and creates maxN
// bridge NADs, each on its own bridge and /24.
func (e *env) writeNetworks(ctx context.Context, maxN int) error {
	if err := os.MkdirAll(e.dataDir, 0o755); err != nil {
		return err
	}
	e.clusterConf = filepath.Join(e.work, "10-cluster.conflist")
	cluster := map[string]any{
		"cniVersion": cniVersion,
		"name":       "cluster",
		"plugins":    []any{bridgeConf("", clusterBridge, "10.230.0.0/24", e.dataDir, true)},
	}
	if err := writeJSON(e.clusterConf, cluster); err != nil {
		return err
	}
	for i := 1; i <= maxN; i++ {
		conf := bridgeConf(nadName(i), nadBridge(i), fmt.Sprintf("10.231.%d.0/24", i), e.dataDir, false)
		data, err := json.Marshal(conf)
		if err != nil {
			return err
		}
		obj := &nadv1.NetworkAttachmentDefinition{
			ObjectMeta: metav1.ObjectMeta{Name: nadName(i), Namespace: namespace},
			Spec:       nadv1.NetworkAttachmentDefinitionSpec{Config: string(data)},
		}
		if _, err := e.nads.K8sCniCncfIoV1().NetworkAttachmentDefinitions(namespace).Create(ctx, obj, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create NAD %s: %w", nadName(i), err)
		}
		e.nadConfs = append(e.nadConfs, data)
	}
	return nil
}

// bridgeConf is a bridge network with host-local IPAM; an empty name leaves
// it to the enclosing conflist.
func bridgeConf(name, bridge, subnet, dataDir string, gateway bool) map[string]any {
	conf := map[string]any{
		"cniVersion": cniVersion,
		"type":       "bridge",
		"bridge":     bridge,
		"isGateway":  gateway,
		"ipam": map[string]any{
			"type":    "host-local",
			"dataDir": dataDir,
			"ranges":  []any{[]any{map[string]any{"subnet": subnet}}},
		},
	}
	if name != "" {
		conf["name"] = name
	}
	return conf
}

// createPod creates a pod object on benchNode asking for the first n NADs.
func (e *env) createPod(ctx context.Context, name string, n int) (*corev1.Pod, error) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec: corev1.PodSpec{
			NodeName:   benchNode,
			Containers: []corev1.Container{{Name: "c", Image: "pause"}},
		},
	}
	if n > 0 {
		names := make([]string, n)
		for i := range names {
			names[i] = nadName(i + 1)
		}
		pod.Annotations = map[string]string{nadv1.NetworkAttachmentAnnot: strings.Join(names, ",")}
	}
	got, err := e.kube.CoreV1().Pods(namespace).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("create pod %s: %w", name, err)
	}
	return got, nil
}

func writeJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}

func deleteLink(name string) {
	if l, err := netlink.LinkByName(name); err == nil {
		_ = netlink.LinkDel(l)
	}
}
