package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	nadclientset "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/client/clientset/versioned"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/braid-cni/braid/e2e/framework"
)

const (
	// scaleNode is the scale benchmark's braidd node, where its pods are.
	scaleNode = "node-scale"
	// scaleNamespaces share the pods and NADs between them.
	scaleNamespaces = 10
	// podHash is the pod-template-hash of every scale pod's ReplicaSet.
	podHash = "5f7c9d8b4"
)

// createScaleObjects creates the namespaces, then opts.nads NADs and
// opts.pods pods on scaleNode with a running status, createWorkers at a time
// through clients without client-side rate limits.
func (e *env) createScaleObjects(ctx context.Context, opts scaleOptions) error {
	cfg := e.cp.AdminConfig()
	cfg.QPS = -1 // no client-side rate limit: the API server is ours
	core, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("create kubernetes client: %w", err)
	}
	nads, err := nadclientset.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("create NAD client: %w", err)
	}
	for i := range scaleNamespaces {
		if err := framework.CreateNamespaceWithSA(ctx, core, scaleNamespace(i)); err != nil {
			return err
		}
	}
	errs := parallel(opts.nads, createWorkers, func(i int) error {
		nad := scaleNAD(i)
		_, err := nads.K8sCniCncfIoV1().NetworkAttachmentDefinitions(nad.Namespace).Create(ctx, nad, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("create NAD %s/%s: %w", nad.Namespace, nad.Name, err)
		}
		return nil
	})
	if err := firstErrors(errs, 3); err != nil {
		return err
	}
	errs = parallel(opts.pods, createWorkers, func(i int) error {
		pod := scalePod(i, opts.nads)
		got, err := core.CoreV1().Pods(pod.Namespace).Create(ctx, pod, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("create pod %s/%s: %w", pod.Namespace, pod.Name, err)
		}
		// Create drops the status; a running pod's is what a node has.
		got.Status = runningStatus(i)
		if _, err := core.CoreV1().Pods(got.Namespace).UpdateStatus(ctx, got, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("update status of pod %s/%s: %w", got.Namespace, got.Name, err)
		}
		return nil
	})
	return firstErrors(errs, 3)
}

func scaleNamespace(i int) string { return fmt.Sprintf("scale-%d", i%scaleNamespaces) }

// scaleNAD is NAD i: a bridge network on its own VLAN and /24 with
// host-local IPAM, in namespace i mod scaleNamespaces.
func scaleNAD(i int) *nadv1.NetworkAttachmentDefinition {
	name := fmt.Sprintf("net-%03d", i)
	subnet := fmt.Sprintf("10.%d.%d", 100+i/256, i%256)
	conf := fmt.Sprintf(`{"cniVersion":"1.0.0","name":%q,"type":"bridge","bridge":"br-%03d","vlan":%d,`+
		`"isGateway":true,"ipMasq":false,"hairpinMode":false,"mtu":1500,"ipam":{"type":"host-local",`+
		`"ranges":[[{"subnet":"%s.0/24","rangeStart":"%s.10","rangeEnd":"%s.250","gateway":"%s.1"}]],`+
		`"routes":[{"dst":"%s.0/24"}]}}`, name, i, 100+i%3000, subnet, subnet, subnet, subnet, subnet)
	return &nadv1.NetworkAttachmentDefinition{
		ObjectMeta: metav1.ObjectMeta{
			Name:      name,
			Namespace: scaleNamespace(i),
			Labels:    map[string]string{"app.kubernetes.io/managed-by": "network-operator", "network-tier": "data"},
		},
		Spec: nadv1.NetworkAttachmentDefinitionSpec{Config: conf},
	}
}

// scalePod is pod i of a deployment-like set on scaleNode: labels, an owner,
// two secondary networks of its namespace (the JSON form), a network-status
// annotation as braid writes it, and one container with env, ports,
// resources and a probe.
func scalePod(i, nads int) *corev1.Pod {
	app := fmt.Sprintf("svc-%02d", i/20)
	nets := fmt.Sprintf(`[{"name":"net-%03d","interface":"net1"},{"name":"net-%03d","interface":"net2"}]`,
		sameNamespaceNAD(i, 0, nads), sameNamespaceNAD(i, 1, nads))
	yes := true
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:      fmt.Sprintf("%s-%s-%05d", app, podHash, i),
			Namespace: scaleNamespace(i),
			Labels: map[string]string{
				"app.kubernetes.io/name": app, "app.kubernetes.io/part-of": "shop",
				"pod-template-hash": podHash, "tier": "backend",
			},
			Annotations: map[string]string{
				nadv1.NetworkAttachmentAnnot:        nets,
				nadv1.NetworkStatusAnnot:            networkStatus(i),
				"prometheus.io/scrape":              "true",
				"prometheus.io/port":                "9090",
				"kubectl.kubernetes.io/restartedAt": "2025-01-01T00:00:00Z",
			},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "apps/v1", Kind: "ReplicaSet", Name: app + "-" + podHash,
				UID: "3f1c2a9e-8d7b-4c6a-9e5f-0a1b2c3d4e5f", Controller: &yes, BlockOwnerDeletion: &yes,
			}},
		},
		Spec: corev1.PodSpec{
			NodeName:   scaleNode,
			Containers: []corev1.Container{scaleContainer(app)},
		},
	}
}

// sameNamespaceNAD is the number of a NAD in pod i's namespace: NAD j is
// in namespace j mod scaleNamespaces, and the pods of a namespace spread over
// its NADs; which picks the first or the second of the pod's.
func sameNamespaceNAD(i, which, nads int) int {
	perNamespace := max(nads/scaleNamespaces, 1)
	return (i%scaleNamespaces + scaleNamespaces*((i/scaleNamespaces+which)%perNamespace)) % max(nads, 1)
}

func scaleContainer(app string) corev1.Container {
	return corev1.Container{
		Name:  "app",
		Image: "registry.example.com/shop/" + app + ":1.27.3",
		Args:  []string{"--listen=:8080", "--metrics=:9090", "--log-format=json"},
		Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}, {Name: "metrics", ContainerPort: 9090}},
		Env: []corev1.EnvVar{
			{Name: "APP_NAME", Value: app},
			{Name: "LOG_LEVEL", Value: "info"},
			{Name: "DB_HOST", Value: "postgres.shop.svc.cluster.local"},
			{Name: "CACHE_URL", Value: "redis://redis.shop.svc.cluster.local:6379/0"},
			{Name: "POD_IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
		},
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("256Mi")},
		},
		ReadinessProbe: &corev1.Probe{
			ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromString("http")}},
			PeriodSeconds: 10,
		},
	}
}

// networkStatus is the network-status annotation of a pod with the cluster
// network and two secondaries.
func networkStatus(i int) string {
	ip := func(net int) string { return fmt.Sprintf("10.%d.%d.%d", net, i/250, 2+i%250) }
	status := []nadv1.NetworkStatus{
		{Name: "cluster", Interface: "eth0", IPs: []string{ip(244)}, Mac: "0a:58:0a:f4:00:02", Default: true},
		{Name: "net1", Interface: "net1", IPs: []string{ip(100)}, Mac: "0a:58:0a:64:00:02"},
		{Name: "net2", Interface: "net2", IPs: []string{ip(101)}, Mac: "0a:58:0a:65:00:02"},
	}
	data, _ := json.Marshal(status) // plain structs: never fails
	return string(data)
}

// runningStatus is the status a kubelet reports for a started pod.
func runningStatus(i int) corev1.PodStatus {
	ip := fmt.Sprintf("10.244.%d.%d", i/250, 2+i%250)
	started := metav1.NewTime(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	running := true
	var conds []corev1.PodCondition
	for _, t := range []corev1.PodConditionType{"PodReadyToStartContainers", corev1.PodInitialized,
		corev1.PodReady, corev1.ContainersReady, corev1.PodScheduled} {
		conds = append(conds, corev1.PodCondition{Type: t, Status: corev1.ConditionTrue, LastTransitionTime: started})
	}
	return corev1.PodStatus{
		Phase:      corev1.PodRunning,
		Conditions: conds,
		HostIP:     "192.168.1.10",
		HostIPs:    []corev1.HostIP{{IP: "192.168.1.10"}},
		PodIP:      ip,
		PodIPs:     []corev1.PodIP{{IP: ip}},
		StartTime:  &started,
		QOSClass:   corev1.PodQOSBurstable,
		ContainerStatuses: []corev1.ContainerStatus{{
			Name:         "app",
			State:        corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: started}},
			Ready:        true,
			Image:        "registry.example.com/shop/app:1.27.3",
			ImageID:      "registry.example.com/shop/app@sha256:9b2a6e1c0d4f3a7b8c5d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b",
			ContainerID:  fmt.Sprintf("containerd://%064x", i),
			Started:      &running,
			RestartCount: 0,
		}},
	}
}
