package ctl

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/braid-cni/braid/attacher"
	"github.com/braid-cni/braid/doctor"
	"github.com/braid-cni/braid/netconf"
)

// doctorOptions are doctor's flags.
type doctorOptions struct {
	confDir, binDir string
	fix             bool
}

func newDoctorCommand(o *options) *cobra.Command {
	d := &doctorOptions{}
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check braid on this node (run as root): config, binaries, kubeconfig, daemon, journal",
		Long: `doctor checks braid on the node it runs on: which file in the CNI config
directory wins and whether it is braid's, that braid's config parses, the
binaries braid calls and the spec versions they support, the kubeconfig
(API access and token expiry), braidd's socket in thick mode, and journal
entries whose network namespace is gone. With --fix it releases those
through braid's own DEL. It judges a namespace only from the runtime's
mount and PID namespaces: run elsewhere (a container), it names the entries
it cannot judge and never releases them. It exits 1 when a check fails.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDoctor(cmd.Context(), o, d)
		},
	}
	cmd.Flags().StringVar(&d.confDir, "cni-conf-dir", "/etc/cni/net.d", "the runtime's CNI config directory")
	cmd.Flags().StringVar(&d.binDir, "cni-bin-dir", "/opt/cni/bin", "the runtime's CNI binary directory (delegates are looked up in braid's binDir)")
	cmd.Flags().BoolVar(&d.fix, "fix", false, "release stale journal entries through braid's DEL")
	return cmd
}

// runDoctor runs the checks with braid's own DEL for --fix and prints them.
func runDoctor(ctx context.Context, o *options, d *doctorOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	results := doctor.Run(ctx, doctor.Options{
		CNIConfDir: d.confDir,
		CNIBinDir:  d.binDir,
		Fix:        d.fix,
		Del:        coreDel,
	})
	if err := o.print(results, func(w io.Writer) error { return doctorTable(w, results) }); err != nil {
		return err
	}
	if doctor.Failed(results) {
		return &ExitError{Code: 1}
	}
	return nil
}

// coreDel runs braid's DEL in this process through the core, as the
// runtime's DEL reaches it: under the container's lock, journal entry and
// libcni cache going the same way, logged where braid's config says.
func coreDel(ctx context.Context, conf *netconf.NetConf, req attacher.Request) error {
	log, closeLog, err := conf.Logger(io.Discard)
	if err != nil {
		return err
	}
	defer closeLog()
	ctx, cancel := context.WithTimeout(ctx, netconf.VerbTimeout)
	defer cancel()
	return attacher.New(conf, attacher.Options{Log: log}).Del(ctx, req)
}

// doctorTable prints one line per check and, when not ok, what to do.
func doctorTable(w io.Writer, results []doctor.Result) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Status, r.Name, r.Detail)
		if r.Status != doctor.OK && r.Fix != "" {
			fmt.Fprintf(tw, "\t\t→ %s\n", r.Fix)
		}
	}
	return tw.Flush()
}
