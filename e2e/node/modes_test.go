package node

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// mode is one way of running braid on the node, each installed from its own
// deployments/ manifests.
type mode struct {
	name string
	// app names the mode's DaemonSet in kube-system and labels its pods.
	app string
	// install applies the mode's manifests, adapted to this node, and
	// returns once braid is in place.
	install func(ctx context.Context, c *cluster) error
	// pluginType is the type braid's conflist runs; files are what the
	// installed mode keeps on the host; conf are strings braid's conflist
	// holds in this mode.
	pluginType string
	files      []string
	conf       []string
	// logs are braid's logs in this mode, for failure reports.
	logs func(c *cluster) string
	// statusCalls counts the CNI STATUS calls braid answered with
	// success so far.
	statusCalls func(c *cluster) (int, error)
}

var modes = []mode{
	{
		name:        "thin",
		app:         "braid",
		install:     installThin,
		pluginType:  "braid",
		files:       []string{filepath.Join(hostBinDir, "braid"), filepath.Join(hostConfDir, braidFile), thinKubeconfig},
		conf:        []string{thinKubeconfig},
		logs:        func(c *cluster) string { return c.podLogs("braid") + c.braidLogs(60) },
		statusCalls: thinStatusCalls,
	},
	{
		name:       "thick",
		app:        "braidd",
		install:    installThick,
		pluginType: "braid-shim",
		// braid stays beside the shim for the DELs the daemon cannot answer.
		files:       []string{filepath.Join(hostBinDir, "braid-shim"), filepath.Join(hostBinDir, "braid"), filepath.Join(hostConfDir, braidFile), braiddSocket},
		conf:        []string{`"daemonSocketDir": "/run/braid"`},
		logs:        func(c *cluster) string { return c.podLogs("braidd") },
		statusCalls: thickStatusCalls,
	},
}

// scenarios run in every mode, in this order; each creates what it needs
// in namespaces of its own, prefixed with the mode's name.
var scenarios = []struct {
	name string
	run  func(t *testing.T, m mode)
}{
	{"installed", installed},
	{"network ready", networkReady},
	{"network health", networkHealth},
	{"annotation forms", annotationForms},
	{"pods talk", podsTalk},
	{"missing NAD", missingNAD},
	{"device-backed networks", deviceBacked},
	{"DRA networks", draNetworks},
	{"hot-plug", hotPlug},
	{"restarts", restarts},
}

// TestModes runs every scenario in each mode in turn on the one cluster:
// install the mode's DaemonSet, run the scenarios, uninstall it. A mode
// that does not hand the node back ends the test: the next one would run
// on top of it.
func TestModes(t *testing.T) {
	for _, m := range modes {
		handedBack := true // also when -run leaves the mode out
		t.Run(m.name, func(t *testing.T) { handedBack = testMode(t, m) })
		if !handedBack {
			t.Fatalf("%s mode did not hand the node back its own config; the next modes are not run", m.name)
		}
	}
}

// testMode installs braid in mode m, runs the scenarios, uninstalls it
// whatever happened, and reports whether the node has its own config back.
func testMode(t *testing.T, m mode) bool {
	start := time.Now()
	if err := m.install(t.Context(), shared); err != nil {
		t.Errorf("install %s mode: %v", m.name, err)
	} else {
		t.Logf("%s mode installed in %s", m.name, time.Since(start).Round(time.Millisecond))
		for _, s := range scenarios {
			t.Run(s.name, func(t *testing.T) { s.run(t, m) })
		}
	}
	if t.Failed() {
		// Now: the DaemonSet's pods, and their logs, go with the uninstall.
		t.Logf("braid's logs in %s mode:\n%s", m.name, m.logs(shared))
	}
	err := shared.uninstall(t.Context(), m)
	if err != nil {
		t.Errorf("uninstall %s mode: %v", m.name, err)
	}
	t.Logf("%s mode: installed, tested and uninstalled in %s", m.name, time.Since(start).Round(time.Millisecond))
	return err == nil
}
