package framework

import (
	"context"
	"fmt"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
)

// NodeToken returns a token of the service account namespace/account such
// as the kubelet gives a DaemonSet pod on node: bound to a pod on that node,
// so the API server adds the node's name to the user it authenticates
// (extra authentication.kubernetes.io/node-name, which
// deployments/policy.yaml checks). It creates the Node and the pod that
// holds the token, NodeTokenPod in namespace, unless they exist; the token
// is valid while that pod is. No kubelet runs the pod.
func (cp *ControlPlane) NodeToken(ctx context.Context, namespace, account, node string, lifetime time.Duration) (string, error) {
	client, _, err := cp.Clients()
	if err != nil {
		return "", err
	}
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node}}
	if err := create(ctx, client.CoreV1().Nodes().Create, n); err != nil {
		return "", fmt.Errorf("node token for %s/%s: create node %s: %w", namespace, account, node, err)
	}
	pods := client.CoreV1().Pods(namespace)
	holder := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: NodeTokenPod(account, node), Namespace: namespace},
		Spec: corev1.PodSpec{
			NodeName:           node,
			ServiceAccountName: account,
			Containers:         []corev1.Container{{Name: "c", Image: PauseImage}},
		},
	}
	if err := create(ctx, pods.Create, holder); err != nil {
		return "", fmt.Errorf("node token for %s/%s: create pod %s: %w", namespace, account, holder.Name, err)
	}
	// The pod as stored: the token binds to its UID.
	holder, err = pods.Get(ctx, holder.Name, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("node token for %s/%s: %w", namespace, account, err)
	}
	seconds := int64(lifetime / time.Second)
	req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		ExpirationSeconds: &seconds,
		BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: holder.Name, UID: holder.UID},
	}}
	tr, err := client.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, account, req, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("node token for %s/%s bound to pod %s: %w", namespace, account, holder.Name, err)
	}
	return tr.Status.Token, nil
}

// NodeTokenPod is the name of the pod NodeToken binds a token of account
// on node to.
func NodeTokenPod(account, node string) string { return account + "-" + node }

// TokenConfig returns a config for the API server that authenticates with
// token.
func (cp *ControlPlane) TokenConfig(token string) *rest.Config {
	return cp.config(token)
}
