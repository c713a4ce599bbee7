package ctl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	"github.com/spf13/cobra"

	"github.com/braid-cni/braid/plan"
)

// ErrNoNetworkStatus: the pod carries no network-status annotation (braid
// has not attached it yet, or it runs on a node without braid).
var ErrNoNetworkStatus = errors.New("no " + nadv1.NetworkStatusAnnot + " annotation")

// PodNetworkStatus reads a pod's network-status annotation.
func PodNetworkStatus(ctx context.Context, pods plan.PodGetter, namespace, name string) ([]nadv1.NetworkStatus, error) {
	pod, err := pods.GetPod(ctx, namespace, name)
	if err != nil {
		return nil, fmt.Errorf("get pod %s/%s: %w", namespace, name, err)
	}
	raw, ok := pod.Annotations[nadv1.NetworkStatusAnnot]
	if !ok {
		return nil, fmt.Errorf("pod %s/%s: %w (not attached by braid yet?)", namespace, name, ErrNoNetworkStatus)
	}
	var statuses []nadv1.NetworkStatus
	if err := json.Unmarshal([]byte(raw), &statuses); err != nil {
		return nil, fmt.Errorf("pod %s/%s: annotation %s: %w", namespace, name, nadv1.NetworkStatusAnnot, err)
	}
	return statuses, nil
}

// WriteNetworkStatus writes statuses as a table; DEVICE-INFO appears when
// some interface has device info.
func WriteNetworkStatus(w io.Writer, statuses []nadv1.NetworkStatus) error {
	withDevice := false
	for _, s := range statuses {
		withDevice = withDevice || s.DeviceInfo != nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	header := "INTERFACE\tNETWORK\tIPS\tMAC\tDEFAULT"
	if withDevice {
		header += "\tDEVICE-INFO"
	}
	fmt.Fprintln(tw, header)
	for _, s := range statuses {
		def := "no"
		if s.Default {
			def = "yes"
		}
		line := fmt.Sprintf("%s\t%s\t%s\t%s\t%s", dashIfEmpty(s.Interface), s.Name,
			dashIfEmpty(strings.Join(s.IPs, ",")), dashIfEmpty(s.Mac), def)
		if withDevice {
			line += "\t" + dashIfEmpty(deviceInfo(s.DeviceInfo))
		}
		fmt.Fprintln(tw, line)
	}
	return tw.Flush()
}

// deviceInfo summarises device info on one line: its type and addresses.
func deviceInfo(d *nadv1.DeviceInfo) string {
	if d == nil {
		return ""
	}
	parts := []string{d.Type}
	add := func(k, v string) {
		if v != "" {
			parts = append(parts, k+"="+v)
		}
	}
	if d.Pci != nil {
		add("pci-address", d.Pci.PciAddress)
		add("pf-pci-address", d.Pci.PfPciAddress)
		add("rdma-device", d.Pci.RdmaDevice)
	}
	if d.Vdpa != nil {
		add("vdpa-path", d.Vdpa.Path)
		add("pci-address", d.Vdpa.PciAddress)
	}
	if d.VhostUser != nil {
		add("vhost-user-path", d.VhostUser.Path)
	}
	if d.Memif != nil {
		add("memif-path", d.Memif.Path)
	}
	return strings.Join(parts, " ")
}

// runStatus prints a pod's network-status as -o asks; the table ends with
// what the networks annotation asks for that network-status does not show.
func runStatus(ctx context.Context, o *options, pods plan.PodGetter, namespace, name string) error {
	statuses, err := PodNetworkStatus(ctx, pods, namespace, name)
	if err != nil {
		return err
	}
	pod, err := pods.GetPod(ctx, namespace, name)
	if err != nil {
		return fmt.Errorf("get pod %s/%s: %w", namespace, name, err)
	}
	pending, err := Pending(pod.Annotations[nadv1.NetworkAttachmentAnnot], namespace, statuses)
	if err != nil {
		pending = []string{"the networks annotation does not parse: " + err.Error()}
	}
	return o.print(statuses, func(w io.Writer) error {
		if err := WriteNetworkStatus(w, statuses); err != nil {
			return err
		}
		for _, p := range pending {
			fmt.Fprintf(w, "pending: %s\n", p)
		}
		return nil
	})
}

func newStatusCommand(o *options) *cobra.Command {
	namespace := ""
	cmd := &cobra.Command{
		Use:   "status POD [-n NS]",
		Short: "Show a pod's network-status: interfaces, networks, IPs, MACs, the default route",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			clients, err := o.clients()
			if err != nil {
				return err
			}
			ns := namespace
			if ns == "" {
				ns = "default"
			}
			return runStatus(cmd.Context(), o, clients, ns, args[0])
		},
	}
	cmd.Flags().StringVarP(&namespace, "namespace", "n", "", "the pod's namespace (default: \"default\")")
	return cmd
}
