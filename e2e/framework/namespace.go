package framework

import (
	"context"
	"errors"
	"fmt"

	nadclientset "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/client/clientset/versioned"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// CreateNamespace creates a namespace; an existing one is fine.
func CreateNamespace(ctx context.Context, client kubernetes.Interface, name string) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := create(ctx, client.CoreV1().Namespaces().Create, ns); err != nil {
		return fmt.Errorf("create namespace %s: %w", name, err)
	}
	return nil
}

// CreateNamespaceWithSA creates a namespace and its "default" service
// account, which a controller-manager would otherwise add. Existing objects
// are fine.
func CreateNamespaceWithSA(ctx context.Context, client kubernetes.Interface, name string) error {
	if err := CreateNamespace(ctx, client, name); err != nil {
		return err
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: name}}
	if err := create(ctx, client.CoreV1().ServiceAccounts(name).Create, sa); err != nil {
		return fmt.Errorf("create service account %s/default: %w", name, err)
	}
	return nil
}

// DeleteNamespaceObjects deletes the pods and NetworkAttachmentDefinitions of
// a namespace. Pods go at once (grace period 0): no kubelet would ever confirm
// a graceful deletion. The namespace itself stays, because without a
// namespace controller it would hang in Terminating and block the name.
func DeleteNamespaceObjects(ctx context.Context, client kubernetes.Interface, nadClient nadclientset.Interface, name string) error {
	now := int64(0)
	opts := metav1.DeleteOptions{GracePeriodSeconds: &now}
	var errs []error
	if err := client.CoreV1().Pods(name).DeleteCollection(ctx, opts, metav1.ListOptions{}); err != nil && !apierrors.IsNotFound(err) {
		errs = append(errs, fmt.Errorf("delete pods in %s: %w", name, err))
	}
	nads := nadClient.K8sCniCncfIoV1().NetworkAttachmentDefinitions(name)
	if err := nads.DeleteCollection(ctx, opts, metav1.ListOptions{}); err != nil && !apierrors.IsNotFound(err) {
		errs = append(errs, fmt.Errorf("delete NADs in %s: %w", name, err))
	}
	return errors.Join(errs...)
}
