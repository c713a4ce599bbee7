// Package ctl is braidctl, the operator's tool: explain the attachment plan
// braid would execute for a pod, lint NAD and pod manifests, show a pod's
// network-status, and check a node. It runs braid's own resolution code;
// nothing here re-implements what the plugin decides.
package ctl

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	"github.com/braid-cni/braid/kube"
)

// Streams are where a command reads and writes.
type Streams struct {
	In          io.Reader
	Out, ErrOut io.Writer
}

// options are the flags every command shares.
type options struct {
	Streams
	kubeconfig string
	output     string
}

// Output formats of -o.
const (
	outputTable = "table"
	outputJSON  = "json"
	outputYAML  = "yaml"
)

// ExitError ends braidctl with Code after printing nothing more (the
// command printed its findings already), as lint does when it found errors.
type ExitError struct{ Code int }

func (e *ExitError) Error() string { return fmt.Sprintf("exit status %d", e.Code) }

// NewCommand returns braidctl's root command.
func NewCommand(s Streams) *cobra.Command {
	o := &options{Streams: s}
	root := &cobra.Command{
		Use:           "braidctl",
		Short:         "Explain, lint and check braid's multi-network attachments",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(s.In)
	root.SetOut(s.Out)
	root.SetErr(s.ErrOut)
	root.PersistentFlags().StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG, else ~/.kube/config)")
	root.PersistentFlags().StringVarP(&o.output, "output", "o", outputTable, "output format: table, json or yaml")
	root.AddCommand(newExplainCommand(o), newLintCommand(o), newStatusCommand(o), newDoctorCommand(o), newAttachCommand(o), newDetachCommand(o))
	return root
}

// Main runs braidctl with args and returns the process's exit code.
func Main(args []string, s Streams) int {
	root := NewCommand(s)
	root.SetArgs(args)
	err := root.Execute()
	var exit *ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exit):
		return exit.Code
	default:
		fmt.Fprintln(s.ErrOut, "braidctl:", err)
		return 1
	}
}

// MainOS runs braidctl on the process's arguments and streams.
func MainOS() int {
	return Main(os.Args[1:], Streams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr})
}

// restConfig loads the kubeconfig the way kubectl does: --kubeconfig, else
// $KUBECONFIG, else ~/.kube/config.
func (o *options) restConfig() (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = o.kubeconfig
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig: %w", err)
	}
	return cfg, nil
}

// clients builds API clients from the kubeconfig.
func (o *options) clients() (*kube.Clients, error) {
	cfg, err := o.restConfig()
	if err != nil {
		return nil, err
	}
	return kube.FromConfig(cfg, 0)
}

// print writes v as -o asks: JSON, YAML, or the table table writes.
func (o *options) print(v any, table func(io.Writer) error) error {
	switch o.output {
	case outputJSON:
		enc := json.NewEncoder(o.Out)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(v)
	case outputYAML:
		data, err := yaml.Marshal(v)
		if err != nil {
			return fmt.Errorf("encode YAML: %w", err)
		}
		_, err = o.Out.Write(data)
		return err
	case outputTable, "":
		return table(o.Out)
	default:
		return fmt.Errorf("unknown output format %q (want table, json or yaml)", o.output)
	}
}
