package framework

import (
	"github.com/containernetworking/cni/libcni"
	corev1 "k8s.io/api/core/v1"
)

// SandboxConf is what a Kubernetes runtime (containerd, CRI-O) passes to the
// node's CNI plugin for a pod sandbox: eth0 in the sandbox's netns and the
// pod's identity in CNI_ARGS. A nil pod sends no K8S_* args, as a runtime
// does for a sandbox outside Kubernetes.
func SandboxConf(pod *corev1.Pod, containerID, netnsPath string) *libcni.RuntimeConf {
	args := [][2]string{{"IgnoreUnknown", "1"}}
	if pod != nil {
		args = append(args,
			[2]string{"K8S_POD_NAMESPACE", pod.Namespace},
			[2]string{"K8S_POD_NAME", pod.Name},
			[2]string{"K8S_POD_INFRA_CONTAINER_ID", containerID},
			[2]string{"K8S_POD_UID", string(pod.UID)},
		)
	}
	return &libcni.RuntimeConf{ContainerID: containerID, NetNS: netnsPath, IfName: "eth0", Args: args}
}
