package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// shownPod is an example pod as showPods found it.
type shownPod struct {
	ref    string
	ip     string
	status []nadv1.NetworkStatus
}

// iface is one interface as the workload reports it.
type iface struct {
	Name  string   `json:"name"`
	MAC   string   `json:"mac"`
	MTU   int      `json:"mtu"`
	Addrs []string `json:"addrs"`
}

// showPods prints each example pod as the pod and the API see it, then
// braid's installer, then has one pod reach another over a secondary
// network.
func (d *demo) showPods(ctx context.Context) error {
	for _, ref := range d.st.Pods {
		if err := d.showPod(ctx, ref); err != nil {
			return err
		}
	}
	if err := d.showInstaller(ctx); err != nil {
		return err
	}
	return d.showDial(ctx)
}

func (d *demo) showPod(ctx context.Context, ref string) error {
	ns, name := splitRef(ref)
	pod, err := d.kube.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("get pod %s: %w", ref, err)
	}
	url := fmt.Sprintf("http://%s:%d/interfaces", pod.Status.PodIP, workloadPort)
	var ifs []iface
	if err := getJSON(ctx, url, &ifs); err != nil {
		return fmt.Errorf("interfaces of pod %s: %w", ref, err)
	}
	var status []nadv1.NetworkStatus
	if err := json.Unmarshal([]byte(pod.Annotations[nadv1.NetworkStatusAnnot]), &status); err != nil {
		return fmt.Errorf("network-status of pod %s: %w", ref, err)
	}
	d.pods = append(d.pods, shownPod{ref: ref, ip: pod.Status.PodIP, status: status})
	fmt.Fprintf(d.out, "\n=== pod %s: %s on node %s, pod IP %s\n", ref, pod.Status.Phase, pod.Spec.NodeName, pod.Status.PodIP)
	fmt.Fprintf(d.out, "%s: %s\n", nadv1.NetworkAttachmentAnnot, compact(pod.Annotations[nadv1.NetworkAttachmentAnnot]))
	fmt.Fprintf(d.out, "interfaces, as the pod sees them (GET %s):\n", url)
	for _, i := range ifs {
		fmt.Fprintf(d.out, "  %-7s %-17s mtu %-5d %s\n", i.Name, i.MAC, i.MTU, strings.Join(i.Addrs, " "))
	}
	fmt.Fprintf(d.out, "%s, as braid recorded it:\n", nadv1.NetworkStatusAnnot)
	for _, s := range status {
		line, _ := json.Marshal(s) // decoded from JSON, so it encodes
		fmt.Fprintf(d.out, "  %s\n", line)
	}
	return nil
}

// showInstaller prints braid's DaemonSet pod and the config it wrote.
func (d *demo) showInstaller(ctx context.Context) error {
	pods, err := d.kube.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{LabelSelector: "app=braid"})
	if err != nil {
		return fmt.Errorf("list braid's installer pods: %w", err)
	}
	for _, p := range pods.Items {
		fmt.Fprintf(d.out, "\n=== DaemonSet kube-system/braid: pod %s %s on node %s (host network)\n", p.Name, p.Status.Phase, p.Spec.NodeName)
	}
	path := filepath.Join(cniConfDir, braidFile)
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read braid's config: %w", err)
	}
	fmt.Fprintf(d.out, "it installed %s and wrote %s, wrapping %s:\n%s\n",
		filepath.Join(cniBinDir, "braid"), path, primaryFile, bytes.TrimSpace(data))
	return nil
}

// showDial has the first pod fetch the second one's interfaces over a
// secondary network both are attached to, the way the workload's /dial
// does it from inside the pod.
func (d *demo) showDial(ctx context.Context) error {
	cmd, desc := d.dialCommand()
	if cmd == "" {
		return nil
	}
	var ifs []iface
	if err := getJSON(ctx, cmd, &ifs); err != nil {
		return fmt.Errorf("%s: %w", desc, err)
	}
	fmt.Fprintf(d.out, "\n%s: GET %s answered with %d interfaces\n", desc, cmd, len(ifs))
	return nil
}

// dialCommand finds two example pods on one secondary network and returns
// the URL that has the first fetch the second's interfaces over it.
func (d *demo) dialCommand() (url, desc string) {
	for i, a := range d.pods {
		for j, b := range d.pods {
			if i == j {
				continue
			}
			for _, sa := range a.status {
				for _, sb := range b.status {
					if sa.Name == sb.Name && sa.Interface != "eth0" && len(sb.IPs) > 0 {
						url = fmt.Sprintf("http://%s:%d/dial?addr=%s:%d", a.ip, workloadPort, sb.IPs[0], workloadPort)
						return url, fmt.Sprintf("pod %s reaches pod %s over %s (%s)", a.ref, b.ref, sa.Name, sb.IPs[0])
					}
				}
			}
		}
	}
	return "", ""
}

// instructions end `demo up`: how to look around, and how to stop.
func (d *demo) instructions() {
	kc := kubeconfigPath()
	fmt.Fprintf(d.out, "\nbraid's demo cluster is up (in %v) and stays up. Look around:\n", since(d.start))
	for _, p := range d.pods {
		fmt.Fprintf(d.out, "  curl http://%s:%d/interfaces    # %s's interfaces\n", p.ip, workloadPort, p.ref)
	}
	if url, desc := d.dialCommand(); url != "" {
		fmt.Fprintf(d.out, "  curl '%s'    # %s\n", url, desc)
	}
	fmt.Fprintf(d.out, "  # if you have kubectl, with the admin kubeconfig:\n  KUBECONFIG=%s kubectl get pods -A -o wide\n", kc)
	if len(d.pods) > 0 {
		_, name := splitRef(d.pods[0].ref)
		fmt.Fprintf(d.out, "  KUBECONFIG=%s kubectl get pod %s -o jsonpath='{.metadata.annotations.k8s\\.v1\\.cni\\.cncf\\.io/network-status}'\n", kc, name)
	}
	fmt.Fprintf(d.out, "  ctr --address %s -n k8s.io containers ls\n", d.node.Socket())
	fmt.Fprintf(d.out, "  logs: %s/{kubelet,containerd}.log, %s/*.log\n", d.node.WorkDir(), d.cp.WorkDir())
	fmt.Fprintf(d.out, "While it is up, `make e2e-node` waits for it: one node per host.\n")
	fmt.Fprintf(d.out, "\nStop it and put the host back with:  make demo-down\n")
}

// getJSON GETs url into v, retrying for a few seconds: a workload that just
// started may not listen yet.
func getJSON(ctx context.Context, url string, v any) error {
	client := &http.Client{Timeout: 3 * time.Second}
	var err error
	for range 20 {
		if err = getJSONOnce(ctx, client, url, v); err == nil || ctx.Err() != nil {
			return err
		}
		time.Sleep(250 * time.Millisecond)
	}
	return err
}

func getJSONOnce(ctx context.Context, client *http.Client, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, bytes.TrimSpace(body))
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("GET %s: decode: %w", url, err)
	}
	return nil
}

// compact puts a JSON annotation on one line; the short form stays as it is.
func compact(s string) string {
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(s)); err == nil {
		return b.String()
	}
	return strings.TrimSpace(s)
}
