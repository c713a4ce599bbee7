package ctl

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/braid-cni/braid/lint"
	"github.com/braid-cni/braid/netconf"
)

// stdinName is how findings name standard input.
const stdinName = "<stdin>"

func newLintCommand(o *options) *cobra.Command {
	var binDir string
	var maxNetworks int
	cmd := &cobra.Command{
		Use:   "lint FILE|DIR|- ...",
		Short: "Check NetworkAttachmentDefinition and pod manifests for network mistakes",
		Long: `lint checks NetworkAttachmentDefinitions (spec.config), pods and the pod
templates of workloads (the networks annotation, and the capabilities its
requests need from the NADs among the linted files). A directory stands for
its .yaml, .yml and .json files; - reads standard input. With --bin-dir,
each plugin binary must be there and support the config's cniVersion.
It prints one line per finding and exits 1 when any is an error.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			inputs, err := readLintInputs(args, o.In)
			if err != nil {
				return err
			}
			var dirs []string
			if binDir != "" {
				dirs = filepath.SplitList(binDir)
			}
			return runLint(cmd.Context(), o, inputs, lint.Options{BinDirs: dirs, MaxNetworksPerPod: maxNetworks})
		},
	}
	cmd.Flags().StringVar(&binDir, "bin-dir", "", "colon-separated CNI plugin directories to check the binaries in")
	cmd.Flags().IntVar(&maxNetworks, "max-networks-per-pod", netconf.DefaultMaxNetworksPerPod, "braid's maxNetworksPerPod on the nodes: pods naming more networks are errors")
	return cmd
}

// runLint lints inputs and prints the findings as -o asks. Error findings
// end in ExitError{Code: 1}.
func runLint(ctx context.Context, o *options, inputs []lint.Input, opts lint.Options) error {
	if ctx == nil {
		ctx = context.Background()
	}
	findings := lint.Lint(ctx, inputs, opts)
	if findings == nil {
		findings = []lint.Finding{}
	}
	if err := o.print(findings, func(w io.Writer) error { return lint.WriteText(w, findings) }); err != nil {
		return err
	}
	if lint.HasErrors(findings) {
		return &ExitError{Code: 1}
	}
	return nil
}

// readLintInputs reads each argument: a file, a directory's manifests, or
// standard input for "-".
func readLintInputs(args []string, stdin io.Reader) ([]lint.Input, error) {
	var inputs []lint.Input
	for _, arg := range args {
		if arg == "-" {
			data, err := io.ReadAll(stdin)
			if err != nil {
				return nil, fmt.Errorf("read standard input: %w", err)
			}
			inputs = append(inputs, lint.Input{Name: stdinName, Data: data})
			continue
		}
		files, err := manifestFiles(arg)
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				return nil, fmt.Errorf("read manifest: %w", err)
			}
			inputs = append(inputs, lint.Input{Name: f, Data: data})
		}
	}
	return inputs, nil
}

// manifestFiles is path itself, or the manifests in directory path, sorted.
func manifestFiles(path string) ([]string, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	if !info.IsDir() {
		return []string{path}, nil
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return nil, fmt.Errorf("manifest directory: %w", err)
	}
	var files []string
	for _, e := range entries {
		switch strings.ToLower(filepath.Ext(e.Name())) {
		case ".yaml", ".yml", ".json":
			if !e.IsDir() {
				files = append(files, filepath.Join(path, e.Name()))
			}
		}
	}
	return files, nil
}
