package ctl

// The explain command: its flags, and the pod and NADs it reads from the
// API or from manifest files.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/containernetworking/cni/pkg/types"
	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/braid-cni/braid/nad"
	"github.com/braid-cni/braid/plan"
)

// explainPods serves the one pod explain plans for.
type explainPods struct{ pod *corev1.Pod }

func (e explainPods) GetPod(_ context.Context, namespace, name string) (*corev1.Pod, error) {
	if e.pod.Namespace != namespace || e.pod.Name != name {
		return nil, apierrors.NewNotFound(corev1.Resource("pods"), name)
	}
	return e.pod, nil
}

// explainNADs serves NADs read from files.
type explainNADs []*nadv1.NetworkAttachmentDefinition

func (e explainNADs) GetNAD(_ context.Context, namespace, name string) (*nadv1.NetworkAttachmentDefinition, error) {
	for _, n := range e {
		if n.Namespace == namespace && n.Name == name {
			return n, nil
		}
	}
	return nil, apierrors.NewNotFound(schema.GroupResource{Group: "k8s.cni.cncf.io", Resource: "network-attachment-definitions"}, name)
}

var (
	_ plan.PodGetter = explainPods{}
	_ nad.Getter     = explainNADs(nil)
)

// explainObjects collects the Pods and NADs of manifests; other kinds are
// skipped.
type explainObjects struct {
	pods []*corev1.Pod
	nads []*nadv1.NetworkAttachmentDefinition
}

// explainManifests decodes Pods and NADs from multi-document YAML or JSON,
// Lists included; objects without a namespace get namespace.
func explainManifests(r io.Reader, namespace string) (*explainObjects, error) {
	objs := &explainObjects{}
	reader := utilyaml.NewYAMLReader(bufio.NewReader(r))
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		data, err := yaml.YAMLToJSON(doc)
		if err != nil {
			return nil, err
		}
		if s := string(bytes.TrimSpace(data)); s == "null" || s == "" {
			continue
		}
		if err := objs.add(data); err != nil {
			return nil, err
		}
	}
	for _, p := range objs.pods {
		if p.Namespace == "" {
			p.Namespace = namespace
		}
	}
	for _, n := range objs.nads {
		if n.Namespace == "" {
			n.Namespace = namespace
		}
	}
	return objs, nil
}

// add decodes one JSON document: a Pod, a NAD, or a List of them.
func (o *explainObjects) add(doc []byte) error {
	var meta struct {
		metav1.TypeMeta `json:",inline"`
		Items           []json.RawMessage `json:"items"`
	}
	if err := json.Unmarshal(doc, &meta); err != nil {
		return err
	}
	switch {
	case strings.HasSuffix(meta.Kind, "List"):
		for _, item := range meta.Items {
			if err := o.add(item); err != nil {
				return err
			}
		}
	case meta.Kind == "Pod":
		pod := &corev1.Pod{}
		if err := json.Unmarshal(doc, pod); err != nil {
			return fmt.Errorf("decode pod: %w", err)
		}
		o.pods = append(o.pods, pod)
	case meta.Kind == "NetworkAttachmentDefinition":
		n := &nadv1.NetworkAttachmentDefinition{}
		if err := json.Unmarshal(doc, n); err != nil {
			return fmt.Errorf("decode NetworkAttachmentDefinition: %w", err)
		}
		o.nads = append(o.nads, n)
	}
	return nil
}

type explainFlags struct {
	namespace, config, runtimeConfig, podFile string
	nadFiles                                  []string
}

func newExplainCommand(o *options) *cobra.Command {
	f := &explainFlags{}
	cmd := &cobra.Command{
		Use:   "explain [POD] [-n NS | --pod-file FILE --nad-file FILE...]",
		Short: "Show the attachment plan braid would execute for a pod, touching no network",
		Long: "explain builds the plan with braid's own code: per interface the network, the plugin chain,\n" +
			"the exact delegate config, the capability args and the default-route decision. A pod braid\n" +
			"would refuse gets braid's error and a non-zero exit.",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runExplain(cmd.Context(), o, f, args)
		},
	}
	cmd.Flags().StringVarP(&f.namespace, "namespace", "n", "", "the pod's namespace (default: \"default\")")
	cmd.Flags().StringVar(&f.config, "config", defaultBraidConfig, "braid's config: a plugin config or a conflist starting with braid")
	cmd.Flags().StringVar(&f.runtimeConfig, "runtime-config", "", "the runtime's capability args as JSON, e.g. '{\"portMappings\":[...]}'")
	cmd.Flags().StringVar(&f.podFile, "pod-file", "", "read the pod from this manifest (- for stdin) instead of the API")
	cmd.Flags().StringArrayVar(&f.nadFiles, "nad-file", nil, "read NetworkAttachmentDefinitions from this manifest (repeatable); with --pod-file")
	return cmd
}

func runExplain(ctx context.Context, o *options, f *explainFlags, args []string) error {
	in := ExplainInput{}
	var err error
	if in.Config, err = os.ReadFile(f.config); err != nil {
		return fmt.Errorf("read braid config: %w", err)
	}
	if f.runtimeConfig != "" {
		if err := json.Unmarshal([]byte(f.runtimeConfig), &in.RuntimeConfig); err != nil {
			return fmt.Errorf("--runtime-config: %w", err)
		}
	}
	namespace := f.namespace
	if namespace == "" {
		namespace = "default"
	}
	if f.podFile != "" {
		err = explainFromFiles(o, f, args, namespace, &in)
	} else {
		err = explainFromAPI(ctx, o, args, namespace, &in)
	}
	if err != nil {
		return err
	}
	ex, err := Explain(ctx, in)
	var cniErr *types.Error
	if errors.As(err, &cniErr) {
		return fmt.Errorf("braid would refuse pod %s/%s with CNI error %d: %w", in.Pod.Namespace, in.Pod.Name, cniErr.Code, err)
	}
	if err != nil {
		return err
	}
	return o.print(ex, func(w io.Writer) error { return WriteExplanation(w, ex) })
}

func explainFromAPI(ctx context.Context, o *options, args []string, namespace string, in *ExplainInput) error {
	if len(args) != 1 {
		return errors.New("explain: name a pod, or give --pod-file")
	}
	clients, err := o.clients()
	if err != nil {
		return err
	}
	if in.Pod, err = clients.GetPod(ctx, namespace, args[0]); err != nil {
		return fmt.Errorf("get pod %s/%s: %w", namespace, args[0], err)
	}
	in.NADs = clients
	return nil
}

func explainFromFiles(o *options, f *explainFlags, args []string, namespace string, in *ExplainInput) error {
	objs, err := explainReadManifests(o, f.podFile, namespace)
	if err != nil {
		return err
	}
	pods := objs.pods
	if len(args) == 1 {
		pods = slices.DeleteFunc(pods, func(p *corev1.Pod) bool { return p.Name != args[0] })
	}
	if len(pods) != 1 {
		return fmt.Errorf("%s: %d pods match, want exactly one (name the pod)", f.podFile, len(pods))
	}
	in.Pod = pods[0]
	all := explainNADs{}
	for _, file := range f.nadFiles {
		objs, err := explainReadManifests(o, file, namespace)
		if err != nil {
			return err
		}
		all = append(all, objs.nads...)
	}
	in.NADs = all
	return nil
}

func explainReadManifests(o *options, file, namespace string) (*explainObjects, error) {
	var r io.Reader = o.In
	if file != "-" {
		fh, err := os.Open(file)
		if err != nil {
			return nil, fmt.Errorf("read manifest: %w", err)
		}
		defer fh.Close()
		r = fh
	}
	objs, err := explainManifests(r, namespace)
	if err != nil {
		return nil, fmt.Errorf("decode manifest %s: %w", file, err)
	}
	return objs, nil
}
