package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/plugins/pkg/ns"
	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"

	"github.com/braid-cni/braid/e2e/framework"
)

// generated is what the test reads back from braid's generated conflist.
type generated struct {
	CNIVersion string `json:"cniVersion"`
	Name       string `json:"name"`
	Plugins    []struct {
		Type            string          `json:"type"`
		Capabilities    map[string]bool `json:"capabilities"`
		ClusterNetwork  string          `json:"clusterNetwork"`
		DaemonSocketDir string          `json:"daemonSocketDir"`
		CNIDir          string          `json:"cniDir"`
		BinDir          string          `json:"binDir"`
		ConfDir         string          `json:"confDir"`
	} `json:"plugins"`
}

// primary is what the generated file must say about the primary config.
type primary struct {
	path       string
	cniVersion string
	caps       map[string]bool
}

// TestAutoconfig: a real braidd with autoconfig keeps 00-braid.conflist in
// front of the primary config in its cniConfigDir: it removes a stale one
// while there is no primary, writes one naming a primary that appears (with
// its cniVersion and capabilities, and a runtime's ADD and DEL through it
// work), follows an alphabetically earlier primary and a primary whose
// content changes, keeps it byte for byte while the only primary is
// truncated in place (warning about that file) and follows the primary
// rewritten, removes it when every primary is gone and when braidd stops.
// Meanwhile a reader polls the file: every read parses. A second braidd
// whose cniConfigDir does not exist yet creates it, keeps running and
// wraps a primary written there later.
func TestAutoconfig(t *testing.T) {
	n := newNode(t, thin, "1.0.0") // the namespace, lease dir and cleanup; braid's thin config is unused
	netd := filepath.Join(n.dir, "host-net.d")
	if err := os.Mkdir(netd, 0o755); err != nil {
		t.Fatal(err)
	}
	own := filepath.Join(netd, "00-braid.conflist")
	// Left by an earlier install while no primary is left, and files no
	// primary may be taken from: one that does not parse, and braid configs
	// under other names (braid would call itself for eth0).
	stale := filepath.Join(n.dir, "gone.conflist")
	writeJSON(t, own, map[string]any{"cniVersion": "1.0.0", "name": "braid-net", "plugins": []any{map[string]any{"type": "braid", "clusterNetwork": stale}}})
	if err := os.WriteFile(filepath.Join(netd, "01-broken.conf"), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	writeJSON(t, filepath.Join(netd, "05-old-braid.conflist"), map[string]any{"cniVersion": "1.0.0", "name": "old", "plugins": []any{map[string]any{"type": "braid", "clusterNetwork": "/x"}}})
	writeJSON(t, filepath.Join(netd, "06-old-shim.conflist"), map[string]any{"cniVersion": "1.0.0", "name": "old", "plugins": []any{map[string]any{"type": "braid-shim", "clusterNetwork": "/x"}}})

	reader := readContinuously(t, own)
	d := launchDaemon(t, map[string]any{
		"kubeconfig":         shared.braiddKubeconfig,
		"nodeName":           "node1",
		"logLevel":           "debug",
		"autoconfig":         true,
		"cniConfigDir":       netd,
		"removeConfigOnExit": true,
		"cniDir":             n.cniDir,
		"binDir":             shared.pluginsDir,
		"confDir":            n.confDir,
	}, true)

	waitGone(t, own, "with no primary")

	cluster := n.clusterConfig()
	cluster["plugins"] = append(cluster["plugins"].([]any), map[string]any{
		"type": "portmap", "capabilities": map[string]any{"portMappings": true},
	})
	clusterPath := filepath.Join(netd, "10-cluster.conflist")
	writeJSON(t, clusterPath, cluster)
	gen := waitGenerated(t, own, primary{clusterPath, "1.0.0", map[string]bool{"portMappings": true}})
	entry := gen.Plugins[0]
	if entry.DaemonSocketDir != d.SocketDir || entry.CNIDir != n.cniDir || entry.BinDir != shared.pluginsDir || entry.ConfDir != n.confDir {
		t.Errorf("generated daemonSocketDir, cniDir, binDir, confDir = %s, %s, %s, %s; want braidd's %s, %s, %s, %s",
			entry.DaemonSocketDir, entry.CNIDir, entry.BinDir, entry.ConfDir, d.SocketDir, n.cniDir, shared.pluginsDir, n.confDir)
	}
	t.Run("ADD and DEL through the generated file", func(t *testing.T) {
		addDelGenerated(t, n, own, entry.Type)
		wantMetric(t, d, `braid_requests_total{result="ok",verb="ADD"}`, 1)
		wantMetric(t, d, `braid_requests_total{result="ok",verb="DEL"}`, 1)
	})

	early := filepath.Join(netd, "05-early.conf")
	writeJSON(t, early, map[string]any{"cniVersion": "0.4.0", "name": "early", "type": "bridge", "bridge": "none0"})
	waitGenerated(t, own, primary{early, "0.4.0", map[string]bool{}})

	writeJSON(t, early, map[string]any{"cniVersion": "1.1.0", "name": "early", "type": "bridge", "bridge": "none0", "capabilities": map[string]any{"mac": true}})
	waitGenerated(t, own, primary{early, "1.1.0", map[string]bool{"mac": true}})

	removeFile(t, early)
	waitGenerated(t, own, primary{clusterPath, "1.0.0", map[string]bool{"portMappings": true}})
	removeFile(t, clusterPath)
	waitGone(t, own, "once every primary is gone")

	writeJSON(t, clusterPath, cluster)
	waitGenerated(t, own, primary{clusterPath, "1.0.0", map[string]bool{"portMappings": true}})
	truncatePrimary(t, d, own, clusterPath)
	// Rewritten with one more plugin: braid's file follows.
	cluster["plugins"] = append(cluster["plugins"].([]any), map[string]any{
		"type": "bandwidth", "capabilities": map[string]any{"bandwidth": true},
	})
	writeJSON(t, clusterPath, cluster)
	waitGenerated(t, own, primary{clusterPath, "1.0.0", map[string]bool{"portMappings": true, "bandwidth": true}})
	d.Stop()
	if _, err := os.Stat(own); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after braidd stopped with removeConfigOnExit, %s: %v; want it removed", own, err)
	}

	stats := reader.stop()
	t.Logf("read %s %d times while it changed: %d parsed, %d absent", filepath.Base(own), stats.parsed+stats.absent+stats.badReads, stats.parsed, stats.absent)
	if stats.badReads > 0 {
		t.Errorf("%d reads of %s failed or did not parse, the first: %q", stats.badReads, own, stats.bad)
	}
	if stats.parsed == 0 || stats.absent == 0 {
		t.Errorf("the reader saw the file %d times and its absence %d times; want both", stats.parsed, stats.absent)
	}
	for _, net := range stats.clusterNetworks {
		if !slices.Contains([]string{stale, clusterPath, early}, net) {
			t.Errorf("a read of %s named clusterNetwork %s", own, net)
		}
	}
	// Nothing left behind, such as the temporary files of atomic writes.
	entries, err := os.ReadDir(netd)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{"01-broken.conf", "05-old-braid.conflist", "06-old-shim.conflist", "10-cluster.conflist"}; !slices.Equal(names, want) {
		t.Errorf("%s holds %v, want %v", netd, names, want)
	}

	t.Run("cniConfigDir that does not exist yet", func(t *testing.T) {
		// As on a new node, before the primary network's DaemonSet ran.
		late := filepath.Join(n.dir, "late", "net.d")
		d := launchDaemon(t, map[string]any{
			"kubeconfig":         shared.braiddKubeconfig,
			"nodeName":           "node1",
			"autoconfig":         true,
			"cniConfigDir":       late,
			"removeConfigOnExit": true,
			"cniDir":             n.cniDir,
			"binDir":             shared.pluginsDir,
			"confDir":            n.confDir,
		}, true)
		eventually(t, 10*time.Second, "braidd creates "+late, func() error {
			info, err := os.Stat(late)
			if err == nil && !info.IsDir() {
				err = fmt.Errorf("%s is not a directory", late)
			}
			return err
		})
		lateOwn := filepath.Join(late, "00-braid.conflist")
		latePrimary := filepath.Join(late, "10-cluster.conflist")
		writeJSON(t, latePrimary, n.clusterConfig())
		waitGenerated(t, lateOwn, primary{latePrimary, "1.0.0", map[string]bool{}})
		// The CNI server kept running beside the writer.
		if code, body, err := d.Probe(t.Context(), "/readyz"); err != nil || code != http.StatusOK {
			t.Errorf("braidd /readyz after creating %s: %d %s, %v", late, code, body, err)
		}
		d.Stop()
		if _, err := os.Stat(lateOwn); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("after braidd stopped with removeConfigOnExit, %s: %v; want it removed", lateOwn, err)
		}
	})
}

// truncatePrimary empties the primary config at path in place, as an
// installer that does not write atomically does before it writes, and
// checks that braid's file at own stays, byte for byte, for a second (ten
// times the settle delay), and that braidd's log warns about path.
func truncatePrimary(t *testing.T, d *framework.Braidd, own, path string) {
	t.Helper()
	held, err := os.ReadFile(own)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for time.Since(start) < time.Second {
		if data, err := os.ReadFile(own); err != nil || !bytes.Equal(data, held) {
			t.Fatalf("%s %s after %s was truncated: %v %q; want it unchanged", filepath.Base(own), time.Since(start).Round(time.Millisecond), filepath.Base(path), err, data)
		}
		time.Sleep(10 * time.Millisecond)
	}
	eventually(t, 10*time.Second, "braidd's warning about the truncated "+filepath.Base(path), func() error {
		data, err := os.ReadFile(d.Log)
		if err != nil {
			return err
		}
		for _, line := range strings.Split(string(data), "\n") {
			if strings.Contains(line, "level=WARN") && strings.Contains(line, "primary="+path) {
				return nil
			}
		}
		return fmt.Errorf("no WARN line with primary=%s in %s", path, d.Log)
	})
	t.Logf("%s unchanged for %s after %s was truncated", filepath.Base(own), time.Since(start).Round(time.Millisecond), filepath.Base(path))
}

// addDelGenerated runs ADD and DEL as a runtime does, with the conflist at
// path: a pod with one secondary network, and a port mapping, which
// reaches the primary's portmap plugin only if the generated file passes
// the primary's capabilities on.
func addDelGenerated(t *testing.T, n *node, path, pluginType string) {
	t.Helper()
	// The runtime finds braid's plugin by its type in its CNI path.
	if _, err := invoke.FindInPath(pluginType, []string{shared.braidDir}); err != nil {
		t.Fatalf("the generated config's type %q: %v", pluginType, err)
	}
	list, err := libcni.ConfListFromFile(path)
	if err != nil {
		t.Fatal(err)
	}
	c := libcni.NewCNIConfigWithCacheDir([]string{shared.braidDir}, n.runtimeDir, nil)
	n.createNAD(n.namespace, "blue", n.bridgeNet("blue", 1, false))
	sb := n.sandbox(n.createPod("p", map[string]string{nadv1.NetworkAttachmentAnnot: "blue"}))
	listenIn(t, sb, "0.0.0.0:8080")
	hostPort := 30000 + n.id
	rt := sb.rt()
	rt.CapabilityArgs = map[string]any{"portMappings": []map[string]any{{"hostPort": hostPort, "containerPort": 8080, "protocol": "tcp"}}}
	if _, err := c.AddNetworkList(t.Context(), list, rt); err != nil {
		t.Fatalf("ADD through %s: %v", path, err)
	}
	attachedBlue(t, n, sb)
	hostAddr := net.JoinHostPort(fmt.Sprintf("10.200.%d.1", n.id), fmt.Sprint(hostPort))
	if got, err := dialRead(hostAddr); err != nil || got != "braid" {
		t.Errorf("host port %s: read %q, %v; want the pod's answer", hostAddr, got, err)
	}
	if rules := grep(natRules(t), sb.containerID); rules == "" {
		t.Errorf("after ADD no NAT rule names container %s", sb.containerID)
	}
	if err := c.DelNetworkList(t.Context(), list, rt); err != nil {
		t.Fatalf("DEL through %s: %v", path, err)
	}
	released(t, n, sb)
	if rules := grep(natRules(t), sb.containerID); rules != "" {
		t.Errorf("after DEL NAT rules still name container %s:\n%s", sb.containerID, rules)
	}
}

// natRules returns the host's NAT table as iptables-save prints it; the
// portmap plugin's rules name the container in a comment.
func natRules(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("iptables-save", "-t", "nat").Output()
	if err != nil {
		t.Fatalf("iptables-save: %v", err)
	}
	return string(out)
}

// listenIn serves "braid" to every connection on addr inside the sandbox
// until the end of the test.
func listenIn(t *testing.T, sb *sandbox, addr string) {
	t.Helper()
	var ln net.Listener
	err := sb.netns.Do(func(ns.NetNS) error {
		var err error
		ln, err = net.Listen("tcp4", addr)
		return err
	})
	if err != nil {
		t.Fatalf("listen on %s in the pod: %v", addr, err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte("braid"))
			_ = c.Close()
		}
	}()
}

// waitGenerated waits until path is braid's conflist for want and returns
// it.
func waitGenerated(t *testing.T, path string, want primary) *generated {
	t.Helper()
	var gen *generated
	waited := eventually(t, 10*time.Second, "braid's config for "+filepath.Base(want.path), func() error {
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		var g generated
		if err := json.Unmarshal(data, &g); err != nil {
			return fmt.Errorf("parse %s: %w", path, err)
		}
		if len(g.Plugins) != 1 {
			return fmt.Errorf("%s has %d plugins, want 1", path, len(g.Plugins))
		}
		p := g.Plugins[0]
		caps := p.Capabilities
		if caps == nil {
			caps = map[string]bool{}
		}
		if p.ClusterNetwork != want.path || g.CNIVersion != want.cniVersion || !maps.Equal(caps, want.caps) {
			return fmt.Errorf("%s names clusterNetwork %s, cniVersion %s, capabilities %v; want %s, %s, %v",
				path, p.ClusterNetwork, g.CNIVersion, caps, want.path, want.cniVersion, want.caps)
		}
		gen = &g
		return nil
	})
	t.Logf("%s names %s after %s", filepath.Base(path), filepath.Base(want.path), waited.Round(time.Millisecond))
	return gen
}

// waitGone waits until path does not exist.
func waitGone(t *testing.T, path, when string) {
	t.Helper()
	waited := eventually(t, 10*time.Second, filepath.Base(path)+" removed "+when, func() error {
		if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("stat %s: %v", path, err)
		}
		return nil
	})
	t.Logf("%s removed %s after %s", filepath.Base(path), when, waited.Round(time.Millisecond))
}

func removeFile(t *testing.T, path string) {
	t.Helper()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
}

// fileReader reads one file over and over in the background.
type fileReader struct {
	stopc chan struct{}
	done  chan readStats
	once  sync.Once
	stats readStats
}

// readStats is what a fileReader saw.
type readStats struct {
	parsed, absent  int
	badReads        int      // reads that failed or did not parse
	bad             []string // why, for the first ten
	clusterNetworks []string // distinct clusterNetwork values read
}

// readContinuously starts reading path until stop (at the latest at
// cleanup), checking that every read of it parses as braid's conflist.
func readContinuously(t *testing.T, path string) *fileReader {
	r := &fileReader{stopc: make(chan struct{}), done: make(chan readStats, 1)}
	go func() {
		var s readStats
		for {
			select {
			case <-r.stopc:
				r.done <- s
				return
			default:
			}
			s.read(path)
			time.Sleep(200 * time.Microsecond)
		}
	}()
	t.Cleanup(func() { r.stop() })
	return r
}

func (s *readStats) read(path string) {
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		s.absent++
		return
	case err != nil:
		s.addBad(err.Error())
		return
	}
	var g generated
	if err := json.Unmarshal(data, &g); err != nil || len(g.Plugins) != 1 {
		s.addBad(fmt.Sprintf("%d plugins, %v: %q", len(g.Plugins), err, data))
		return
	}
	s.parsed++
	if net := g.Plugins[0].ClusterNetwork; !slices.Contains(s.clusterNetworks, net) {
		s.clusterNetworks = append(s.clusterNetworks, net)
	}
}

// addBad records a bad read; the first ten are kept in full.
func (s *readStats) addBad(why string) {
	s.badReads++
	if len(s.bad) < 10 {
		s.bad = append(s.bad, why)
	}
}

// stop ends the reading and returns what it saw.
func (r *fileReader) stop() readStats {
	r.once.Do(func() {
		close(r.stopc)
		r.stats = <-r.done
	})
	return r.stats
}
