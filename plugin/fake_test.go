package plugin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/version"
)

// execCall is one plugin run the fake exec saw.
type execCall struct {
	command     string // CNI_COMMAND
	plugin      string // base name of the plugin path
	containerID string
	ifName      string
	netns       string
	cniArgs     string
	stdin       []byte
}

func (c execCall) String() string {
	return strings.TrimSpace(fmt.Sprintf("%s %s %s %s", c.command, c.plugin, c.containerID, c.ifName))
}

// fakeExec runs no binary: every plugin is "found" in /fake/bin, ADD
// answers with a result of the config's cniVersion for CNI_IFNAME, and the
// other verbs print nothing. fail maps a CNI_COMMAND to its error.
type fakeExec struct {
	version.PluginDecoder
	mu    sync.Mutex
	calls []execCall
	fail  map[string]error
	quiet bool // record nothing (benchmarks)
	// With hold set, an ADD first sends its call on entered, then waits
	// for hold to be closed or its context to end (as a real plugin is
	// killed when libcni's context ends).
	hold    chan struct{}
	entered chan execCall
}

var _ invoke.Exec = (*fakeExec)(nil)

func (f *fakeExec) FindInPath(plugin string, _ []string) (string, error) {
	return filepath.Join("/fake/bin", plugin), nil
}

func (f *fakeExec) ExecPlugin(ctx context.Context, pluginPath string, stdin []byte, environ []string) ([]byte, error) {
	c := execCall{plugin: filepath.Base(pluginPath), stdin: append([]byte(nil), stdin...)}
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "CNI_COMMAND":
			c.command = v
		case "CNI_CONTAINERID":
			c.containerID = v
		case "CNI_IFNAME":
			c.ifName = v
		case "CNI_NETNS":
			c.netns = v
		case "CNI_ARGS":
			c.cniArgs = v
		}
	}
	f.mu.Lock()
	if !f.quiet {
		f.calls = append(f.calls, c)
	}
	err := f.fail[c.command]
	f.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if c.command == "ADD" && f.hold != nil {
		f.entered <- c
		select {
		case <-f.hold:
		case <-ctx.Done():
			return nil, fmt.Errorf("fake %s: killed: %w", c.plugin, ctx.Err())
		}
	}
	if c.command != "ADD" {
		return nil, nil
	}
	var conf struct {
		CNIVersion string `json:"cniVersion"`
	}
	if err := json.Unmarshal(stdin, &conf); err != nil {
		return nil, fmt.Errorf("fake %s: stdin: %w", c.plugin, err)
	}
	return []byte(fmt.Sprintf(`{"cniVersion":%q,`+
		`"interfaces":[{"name":%q,"mac":"0a:58:0a:f4:00:05","sandbox":%q}],`+
		`"ips":[{"address":"10.244.0.5/24","gateway":"10.244.0.1","interface":0}],`+
		`"routes":[{"dst":"0.0.0.0/0","gw":"10.244.0.1"}],`+
		`"dns":{"nameservers":["10.96.0.10"]}}`, conf.CNIVersion, c.ifName, c.netns)), nil
}

// seen lists the calls as "COMMAND plugin container ifname", optionally of
// some commands only.
func (f *fakeExec) seen(commands ...string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.calls {
		if len(commands) == 0 || slices.Contains(commands, c.command) {
			out = append(out, c.String())
		}
	}
	return out
}

func (f *fakeExec) callsOf(command string) []execCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []execCall
	for _, c := range f.calls {
		if c.command == command {
			out = append(out, c)
		}
	}
	return out
}

const podArgs = "IgnoreUnknown=1;K8S_POD_NAMESPACE=ns1;K8S_POD_NAME=web;K8S_POD_UID=uid-1"

// env is a braid plugin on a temp dir, with a fake exec and no API server.
type env struct {
	version     string // braid config's cniVersion
	cniDir      string
	confDir     string
	clusterPath string
	exec        *fakeExec
	stdout      *bytes.Buffer
	plugin      *Plugin
}

func newEnv(t testing.TB, cniVersion string) *env {
	t.Helper()
	dir := t.TempDir()
	e := &env{
		version:     cniVersion,
		cniDir:      filepath.Join(dir, "cni"),
		confDir:     filepath.Join(dir, "net.d"),
		clusterPath: filepath.Join(dir, "cluster.conflist"),
		exec:        &fakeExec{fail: map[string]error{}},
		stdout:      &bytes.Buffer{},
	}
	e.writeCluster(t, cniVersion)
	e.plugin = &Plugin{
		Stdout:           e.stdout,
		Stderr:           io.Discard,
		Exec:             e.exec,
		Timeout:          time.Minute,
		ReadinessTimeout: time.Second,
	}
	return e
}

// writeCluster writes the cluster network: a one-plugin ptp conflist named podnet.
func (e *env) writeCluster(t testing.TB, cniVersion string) {
	t.Helper()
	data := fmt.Sprintf(`{"cniVersion":%q,"name":"podnet","plugins":[{"type":"ptp","ipam":{"type":"host-local","subnet":"10.244.0.0/24"}}]}`, cniVersion)
	if err := os.WriteFile(e.clusterPath, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

// conf is braid's config; extra keys are set on top, and a nil value
// removes a key.
func (e *env) conf(t testing.TB, extra map[string]any) []byte {
	t.Helper()
	c := map[string]any{
		"cniVersion":     e.version,
		"name":           "braid",
		"type":           "braid",
		"clusterNetwork": e.clusterPath,
		"cniDir":         e.cniDir,
		"confDir":        e.confDir,
		"binDir":         "/opt/cni/bin",
		"logToStderr":    false,
	}
	for k, v := range extra {
		if v == nil {
			delete(c, k)
			continue
		}
		c[k] = v
	}
	data, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// args are the runtime's args for a pod sandbox id.
func (e *env) args(t testing.TB, id string, extra map[string]any) *skel.CmdArgs {
	return &skel.CmdArgs{
		ContainerID: id,
		Netns:       "/var/run/netns/" + id,
		IfName:      "eth0",
		Args:        podArgs,
		Path:        "/opt/cni/bin",
		StdinData:   e.conf(t, extra),
	}
}

// journalPath is where braid journals container id.
func (e *env) journalPath(id string) string { return filepath.Join(e.cniDir, id) }
