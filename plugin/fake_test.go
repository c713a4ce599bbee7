package plugin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/skel"

	"github.com/braid-cni/braid/internal/testutil"
)

const podArgs = "IgnoreUnknown=1;K8S_POD_NAMESPACE=ns1;K8S_POD_NAME=web;K8S_POD_UID=uid-1"

// env is a braid plugin on a temp dir, with a fake exec and no API server.
type env struct {
	version     string // braid config's cniVersion
	cniDir      string
	confDir     string
	clusterPath string
	exec        *testutil.Exec
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
		exec:        testutil.NewExec(),
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
