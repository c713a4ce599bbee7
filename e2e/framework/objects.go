package framework

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	nadclientset "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/client/clientset/versioned"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclientset "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"
)

// EnsureObjects creates every object of a multi-document YAML file that does
// not exist yet; existing objects are left as they are. A relative path is
// taken from the repository root. Supported kinds: Namespace, ServiceAccount,
// ConfigMap, Secret, Pod, DaemonSet, ClusterRole, ClusterRoleBinding, Role,
// RoleBinding, ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
// CustomResourceDefinition (waited for until established) and
// NetworkAttachmentDefinition. Namespaced objects without a namespace go to
// "default".
func EnsureObjects(ctx context.Context, cfg *rest.Config, path string) error {
	return EnsureObjectsOf(ctx, cfg, path)
}

// EnsureObjectsOf is EnsureObjects for the objects of the given kinds only
// (all of them when kinds is empty), for a file that holds more than a test
// can run, such as a Deployment next to the RBAC objects it needs.
func EnsureObjectsOf(ctx context.Context, cfg *rest.Config, path string, kinds ...string) error {
	if !filepath.IsAbs(path) {
		root, err := RepoRoot()
		if err != nil {
			return fmt.Errorf("apply %s: %w", path, err)
		}
		path = filepath.Join(root, path)
	}
	objs, err := decodeFile(path)
	if err != nil {
		return fmt.Errorf("apply %s: %w", path, err)
	}
	var c clients
	if c.kc, err = kubernetes.NewForConfig(cfg); err != nil {
		return fmt.Errorf("apply %s: %w", path, err)
	}
	if c.nc, err = nadclientset.NewForConfig(cfg); err != nil {
		return fmt.Errorf("apply %s: %w", path, err)
	}
	if c.xc, err = apiextensionsclientset.NewForConfig(cfg); err != nil {
		return fmt.Errorf("apply %s: %w", path, err)
	}
	for _, obj := range objs {
		if len(kinds) > 0 && !slices.Contains(kinds, obj.GetObjectKind().GroupVersionKind().Kind) {
			continue
		}
		if err := ensure(ctx, c, obj); err != nil {
			return fmt.Errorf("apply %s: %w", path, err)
		}
	}
	return nil
}

// decodeFile decodes the documents of a YAML file into typed objects,
// skipping documents that are empty or hold only comments.
func decodeFile(path string) ([]runtime.Object, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	scheme := runtime.NewScheme()
	if err := errors.Join(clientgoscheme.AddToScheme(scheme), nadv1.AddToScheme(scheme), apiextensionsv1.AddToScheme(scheme)); err != nil {
		return nil, fmt.Errorf("build scheme: %w", err)
	}
	decoder := serializer.NewCodecFactory(scheme).UniversalDeserializer()
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var objs []runtime.Object
	for i := 1; ; i++ {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read document %d: %w", i, err)
		}
		var meta metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			return nil, fmt.Errorf("decode document %d: %w", i, err)
		}
		if meta.Kind == "" && meta.APIVersion == "" {
			continue
		}
		obj, _, err := decoder.Decode(doc, nil, nil)
		if err != nil {
			return nil, fmt.Errorf("decode document %d (%s): %w", i, meta.Kind, err)
		}
		objs = append(objs, obj)
	}
}

// clients are the typed clients ensure creates objects with.
type clients struct {
	kc kubernetes.Interface
	nc nadclientset.Interface
	xc apiextensionsclientset.Interface
}

// ensure creates one object with its typed client.
func ensure(ctx context.Context, c clients, obj runtime.Object) error {
	kc := c.kc
	var err error
	switch o := obj.(type) {
	case *corev1.Namespace:
		err = create(ctx, kc.CoreV1().Namespaces().Create, o)
	case *corev1.ServiceAccount:
		err = create(ctx, kc.CoreV1().ServiceAccounts(namespaceOf(o)).Create, o)
	case *corev1.ConfigMap:
		err = create(ctx, kc.CoreV1().ConfigMaps(namespaceOf(o)).Create, o)
	case *corev1.Secret:
		err = create(ctx, kc.CoreV1().Secrets(namespaceOf(o)).Create, o)
	case *corev1.Pod:
		err = create(ctx, kc.CoreV1().Pods(namespaceOf(o)).Create, o)
	case *appsv1.DaemonSet:
		err = create(ctx, kc.AppsV1().DaemonSets(namespaceOf(o)).Create, o)
	case *rbacv1.ClusterRole:
		err = create(ctx, kc.RbacV1().ClusterRoles().Create, o)
	case *rbacv1.ClusterRoleBinding:
		err = create(ctx, kc.RbacV1().ClusterRoleBindings().Create, o)
	case *rbacv1.Role:
		err = create(ctx, kc.RbacV1().Roles(namespaceOf(o)).Create, o)
	case *rbacv1.RoleBinding:
		err = create(ctx, kc.RbacV1().RoleBindings(namespaceOf(o)).Create, o)
	case *admissionregistrationv1.ValidatingAdmissionPolicy:
		err = create(ctx, kc.AdmissionregistrationV1().ValidatingAdmissionPolicies().Create, o)
	case *admissionregistrationv1.ValidatingAdmissionPolicyBinding:
		err = create(ctx, kc.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings().Create, o)
	case *apiextensionsv1.CustomResourceDefinition:
		crds := c.xc.ApiextensionsV1().CustomResourceDefinitions()
		if err = create(ctx, crds.Create, o); err == nil {
			err = waitEstablished(ctx, crds, o.Name)
		}
	case *nadv1.NetworkAttachmentDefinition:
		err = create(ctx, c.nc.K8sCniCncfIoV1().NetworkAttachmentDefinitions(namespaceOf(o)).Create, o)
	default:
		return fmt.Errorf("unsupported kind %s", obj.GetObjectKind().GroupVersionKind().Kind)
	}
	if err != nil {
		m, _ := obj.(metav1.Object)
		return fmt.Errorf("create %s %s/%s: %w",
			obj.GetObjectKind().GroupVersionKind().Kind, m.GetNamespace(), m.GetName(), err)
	}
	return nil
}

// create calls a typed client's Create and accepts an existing object.
func create[T any](ctx context.Context, fn func(context.Context, T, metav1.CreateOptions) (T, error), obj T) error {
	if _, err := fn(ctx, obj, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	return nil
}

// namespaceOf defaults an object's namespace to "default", writing it back so
// that error messages name it.
func namespaceOf(obj metav1.Object) string {
	if obj.GetNamespace() == "" {
		obj.SetNamespace(metav1.NamespaceDefault)
	}
	return obj.GetNamespace()
}
