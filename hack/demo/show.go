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
	"slices"
	"strings"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/braid-cni/braid/e2e/framework"
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
// braid's DaemonSet, then has one pod reach another over a secondary
// network.
func (d *demo) showPods(ctx context.Context) error {
	for _, ref := range d.st.Pods {
		if err := d.showPod(ctx, ref); err != nil {
			return err
		}
	}
	if err := d.showBraid(ctx); err != nil {
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

// showBraid prints braid's DaemonSet pod, the config it wrote and, in
// thick mode, what braidd's metrics say about the pods it served.
func (d *demo) showBraid(ctx context.Context) error {
	mode := d.st.Mode
	app := mode.App()
	pods, err := d.kube.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{LabelSelector: "app=" + app})
	if err != nil {
		return fmt.Errorf("list pods of DaemonSet kube-system/%s: %w", app, err)
	}
	for _, p := range pods.Items {
		fmt.Fprintf(d.out, "\n=== %s mode: DaemonSet kube-system/%s: pod %s %s on node %s (host network)\n",
			mode, app, p.Name, p.Status.Phase, p.Spec.NodeName)
	}
	data, err := os.ReadFile(framework.BraidConfig)
	if err != nil {
		return fmt.Errorf("read braid's config: %w", err)
	}
	if mode == framework.Thin {
		fmt.Fprintf(d.out, "its installer put %s on the node and wrote %s, wrapping %s:\n%s\n",
			filepath.Join(cniBinDir, "braid"), framework.BraidConfig, primaryFile, bytes.TrimSpace(data))
		return nil
	}
	fmt.Fprintf(d.out, "braidd installed %s (and %s, for DELs without the daemon) and wrote %s, "+
		"which has the shim forward to braidd's socket, wrapping %s:\n%s\n",
		filepath.Join(cniBinDir, "braid-shim"), filepath.Join(cniBinDir, "braid"), framework.BraidConfig, primaryFile, bytes.TrimSpace(data))
	url, err := d.metricsURL(ctx)
	if err != nil {
		return err
	}
	lines, err := metrics(ctx, url, "braid_requests_total", "braid_cache_pods", "braid_cache_nads", "braid_journal_entries")
	if err != nil {
		return fmt.Errorf("braidd's metrics: %w", err)
	}
	fmt.Fprintf(d.out, "braidd's metrics (%s), from its caches and the requests it served:\n", url)
	for _, l := range lines {
		fmt.Fprintf(d.out, "  %s\n", l)
	}
	return nil
}

// metricsURL is braidd's /metrics, at the metricsAddr of its ConfigMap
// (deployments/daemonset-thick.yaml): braidd shares the host's network.
func (d *demo) metricsURL(ctx context.Context) (string, error) {
	cm, err := d.kube.CoreV1().ConfigMaps("kube-system").Get(ctx, "braidd", metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("get ConfigMap kube-system/braidd: %w", err)
	}
	var conf struct {
		MetricsAddr string `json:"metricsAddr"`
	}
	if err := json.Unmarshal([]byte(cm.Data["braidd.json"]), &conf); err != nil || conf.MetricsAddr == "" {
		return "", fmt.Errorf("ConfigMap kube-system/braidd: no metricsAddr in braidd.json (%v)", err)
	}
	return "http://" + conf.MetricsAddr + "/metrics", nil
}

// metrics GETs a Prometheus text page and returns the samples of the named
// metrics.
func metrics(ctx context.Context, url string, names ...string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	var out []string
	for _, line := range strings.Split(string(body), "\n") {
		name, _, _ := strings.Cut(line, " ")
		name, _, _ = strings.Cut(name, "{")
		if slices.Contains(names, name) {
			out = append(out, line)
		}
	}
	return out, nil
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
func (d *demo) instructions(ctx context.Context) {
	kc := kubeconfigPath()
	fmt.Fprintf(d.out, "\nbraid's demo cluster is up in %s mode (in %v) and stays up. Look around:\n", d.st.Mode, since(d.start))
	for _, p := range d.pods {
		fmt.Fprintf(d.out, "  curl http://%s:%d/interfaces    # %s's interfaces\n", p.ip, workloadPort, p.ref)
	}
	if url, desc := d.dialCommand(); url != "" {
		fmt.Fprintf(d.out, "  curl '%s'    # %s\n", url, desc)
	}
	if len(d.pods) > 0 {
		_, name := splitRef(d.pods[0].ref)
		fmt.Fprintf(d.out, "  bin/braidctl --kubeconfig %s status %s    # its network-status\n", kc, name)
		fmt.Fprintf(d.out, "  bin/braidctl --kubeconfig %s explain %s    # the plan braid runs for it\n", kc, name)
	}
	fmt.Fprintf(d.out, "  bin/braidctl doctor    # checks braid on this node\n")
	if d.st.Mode == framework.Thick {
		if pod, network := d.attachable(); pod != "" {
			fmt.Fprintf(d.out, "  bin/braidctl --kubeconfig %s attach %s %s@%s9    # hot-plug: braidd adds it to the running pod\n",
				kc, pod, network, network)
		}
		if url, err := d.metricsURL(ctx); err == nil {
			fmt.Fprintf(d.out, "  curl -s %s | grep ^braid_    # braidd's metrics\n", url)
		}
	}
	fmt.Fprintf(d.out, "  # if you have kubectl, with the admin kubeconfig:\n  KUBECONFIG=%s kubectl get pods -A -o wide\n", kc)
	fmt.Fprintf(d.out, "  KUBECONFIG=%s kubectl -n kube-system logs daemonset/%s\n", kc, d.st.Mode.App())
	fmt.Fprintf(d.out, "  ctr --address %s -n k8s.io containers ls\n", d.node.Socket())
	fmt.Fprintf(d.out, "  logs: %s/{kubelet,containerd}.log, %s/*.log\n", d.node.WorkDir(), d.cp.WorkDir())
	fmt.Fprintf(d.out, "While it is up, `make e2e-node` waits for it: one node per host.\n")
	fmt.Fprintf(d.out, "\nStop it and put the host back with:  make demo-down\n")
}

// attachable finds an example pod and a network of the pod's namespace it
// is not attached to, but another example pod is: one to hot-plug.
func (d *demo) attachable() (pod, network string) {
	for _, a := range d.pods {
		ns, name := splitRef(a.ref)
		has := map[string]bool{}
		for _, s := range a.status {
			has[s.Name] = true
		}
		for _, b := range d.pods {
			for _, s := range b.status {
				netNS, netName, ok := strings.Cut(s.Name, "/")
				if ok && netNS == ns && !has[s.Name] {
					return name, netName
				}
			}
		}
	}
	return "", ""
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
