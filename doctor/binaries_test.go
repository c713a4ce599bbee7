package doctor

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/braid-cni/braid/netconf"
)

func TestCheckBinaries(t *testing.T) {
	dir := t.TempDir()
	runtimeBin := filepath.Join(dir, "runtime-bin")
	pluginBin := filepath.Join(dir, "plugins")
	confDir := filepath.Join(dir, "multus")
	cluster := filepath.Join(dir, "10-cluster.conflist")
	writeFile(t, cluster, map[string]any{"cniVersion": "1.0.0", "name": "cluster", "plugins": []any{
		map[string]any{"type": "bridge", "ipam": map[string]any{"type": "host-local"}}, map[string]any{"type": "old"},
	}})
	// A delegate config in confDir that a NAD may name: its plugin is missing.
	writeFile(t, filepath.Join(confDir, "extra.conf"), map[string]any{"cniVersion": "0.4.0", "name": "extra", "type": "bridge", "ipam": map[string]any{"type": "absent"}})
	fakePlugin(t, runtimeBin, "braid", "0.3.1", "0.4.0", "1.0.0", "1.1.0")
	fakePlugin(t, pluginBin, "bridge", "0.3.1", "1.0.0")
	fakePlugin(t, pluginBin, "old", "0.3.0", "0.3.1")
	fakePlugin(t, pluginBin, "host-local", "1.0.0")

	data, _ := json.Marshal(map[string]any{
		"cniVersion": "1.0.0", "name": "n", "type": "braid",
		"clusterNetwork": cluster, "confDir": confDir, "binDir": pluginBin,
	})
	conf, err := netconf.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	results := CheckBinaries(context.Background(), conf, Options{CNIBinDir: runtimeBin})
	got := map[string]Result{}
	for _, r := range results {
		got[r.Name] = r
	}
	want := []struct {
		name       string
		status     Status
		wantDetail string
	}{
		{"binary braid", OK, "supports 0.3.1, 0.4.0, 1.0.0, 1.1.0"},
		// extra.conf's 0.4.0 is optional: a warning.
		{"binary bridge", Warn, "supports 0.3.1, 1.0.0, not cniVersion 0.4.0 (extra.conf)"},
		{"binary host-local", OK, "for cluster network cluster in " + pluginBin + ": supports 1.0.0"},
		{"binary old", Fail, "not cniVersion 1.0.0 (cluster network cluster)"},
		{"binary absent", Warn, "for extra.conf: failed to find plugin"},
	}
	if len(results) != len(want) {
		t.Errorf("got %d results, want %d: %+v", len(results), len(want), results)
	}
	for _, w := range want {
		r, found := got[w.name]
		if !found {
			t.Errorf("no result %q", w.name)
			continue
		}
		if r.Status != w.status || !strings.Contains(r.Detail, w.wantDetail) {
			t.Errorf("%s: %+v, want %s containing %q", w.name, r, w.status, w.wantDetail)
		}
		if r.Status != OK && r.Fix == "" {
			t.Errorf("%s: no fix", w.name)
		}
	}
}

// braid is looked up where the runtime looks, not in braid's binDir.
func TestCheckBinariesBraidMissing(t *testing.T) {
	dir := t.TempDir()
	cluster := filepath.Join(dir, "cluster.conf")
	writeFile(t, cluster, map[string]any{"cniVersion": "1.0.0", "name": "cluster", "type": "bridge"})
	fakePlugin(t, dir, "bridge", "1.0.0")
	fakePlugin(t, dir, "braid", "1.0.0") // in binDir only
	data, _ := json.Marshal(map[string]any{"cniVersion": "1.0.0", "name": "n", "type": "braid", "clusterNetwork": cluster, "binDir": dir, "confDir": dir})
	conf, err := netconf.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	results := CheckBinaries(context.Background(), conf, Options{CNIBinDir: filepath.Join(dir, "empty")})
	if len(results) == 0 || results[0].Name != "binary braid" || results[0].Status != Fail || !strings.Contains(results[0].Detail, "empty") {
		t.Errorf("results %+v, want braid failing in the runtime's bin dir", results)
	}
}
