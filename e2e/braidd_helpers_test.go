package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/braid-cni/braid/e2e/framework"
)

// launchDaemon runs a braidd of the test's own, with config (plus the
// socketDir and metricsAddr NewBraidd picks unless config names them), and
// stops it at cleanup. With ready it waits for /readyz; without, only until
// braidd serves its socket and /healthz.
func launchDaemon(t *testing.T, config map[string]any, ready bool) *framework.Braidd {
	t.Helper()
	d, err := framework.NewBraidd(shared.braiddBin, t.TempDir(), config)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		d.Stop()
		if t.Failed() {
			if data, err := os.ReadFile(d.Log); err == nil {
				t.Logf("%s:\n%s", d.Log, tail(string(data), 40))
			}
		}
	})
	start := d.Launch
	if ready {
		start = d.Start
	}
	if err := start(t.Context()); err != nil {
		t.Fatal(err)
	}
	return d
}

// metric reads one series of braidd's /metrics, spelled as braidd prints it
// (name{label="value",...} with the labels sorted). present is false when
// the series is not printed, as for a counter vector's series never
// counted.
func metric(t *testing.T, d *framework.Braidd, series string) (value float64, present bool) {
	t.Helper()
	code, body, err := d.Probe(t.Context(), "/metrics")
	if err != nil || code != http.StatusOK {
		t.Fatalf("braidd /metrics: %d, %v", code, err)
	}
	for _, line := range strings.Split(body, "\n") {
		name, val, ok := strings.Cut(line, " ")
		if !ok || name != series {
			continue
		}
		v, err := strconv.ParseFloat(val, 64)
		if err != nil {
			t.Fatalf("braidd /metrics: %q: %v", line, err)
		}
		return v, true
	}
	return 0, false
}

// mustMetric is metric for a series braidd always prints (gauges, the
// fallback counter); a missing one fails the test.
func mustMetric(t *testing.T, d *framework.Braidd, series string) float64 {
	t.Helper()
	v, ok := metric(t, d, series)
	if !ok {
		t.Fatalf("braidd /metrics has no series %s", series)
	}
	return v
}

// wantMetric fails the test unless the series has the value want.
func wantMetric(t *testing.T, d *framework.Braidd, series string, want float64) {
	t.Helper()
	if got, _ := metric(t, d, series); got != want {
		t.Errorf("braidd /metrics: %s = %v, want %v", series, got, want)
	}
}

// eventually calls check every 20 ms until it returns nil; once timeout has
// passed it fails the test with what and check's last error. It returns how
// long it waited.
func eventually(t *testing.T, timeout time.Duration, what string, check func() error) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := start.Add(timeout)
	for {
		err := check()
		if err == nil {
			return time.Since(start)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %v", what, timeout, err)
		}
		select {
		case <-t.Context().Done():
			t.Fatalf("%s: %v", what, t.Context().Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// writeKubeconfig writes a kubeconfig for server, trusting caPEM and
// authenticating with token, to a new file in dir and returns its path.
func writeKubeconfig(t *testing.T, dir, server string, caPEM []byte, token string) string {
	t.Helper()
	const name = "braid-e2e"
	kc := clientcmdapi.NewConfig()
	kc.Clusters[name] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: caPEM}
	kc.AuthInfos[name] = &clientcmdapi.AuthInfo{Token: token}
	kc.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name}
	kc.CurrentContext = name
	path := filepath.Join(dir, "braidd.kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatalf("write kubeconfig %s: %v", path, err)
	}
	return path
}

// attachedBlue fails the test unless the sandbox has exactly eth0 and net1
// and the pod's network-status lists the cluster network on eth0 and the
// namespace's "blue" on net1, as the netns has them. braidd writes
// network-status just after ADD, so it waits up to 10 seconds for one.
func attachedBlue(t *testing.T, n *node, sb *sandbox) {
	t.Helper()
	links := sb.links()
	if _, ok := links["net1"]; !ok || len(links) != 2 {
		t.Fatalf("pod has interfaces %v, want eth0 and net1", keys(links))
	}
	var pod *corev1.Pod
	eventually(t, 10*time.Second, "network-status of "+sb.pod.Name, func() error {
		pod = n.getPod(sb.pod.Name)
		if _, ok := pod.Annotations[nadv1.NetworkStatusAnnot]; !ok {
			return fmt.Errorf("no %s annotation", nadv1.NetworkStatusAnnot)
		}
		return nil
	})
	checkStatus(t, sb, networkStatus(t, pod), []string{"cluster", n.namespace + "/blue"}, []string{"eth0", "net1"})
}

// fallbacks is braidd's count of live GETs for objects its caches had not
// seen.
func fallbacks(t *testing.T, d *framework.Braidd) float64 {
	t.Helper()
	return mustMetric(t, d, "braid_cache_fallbacks_total")
}
