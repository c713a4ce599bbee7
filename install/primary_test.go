package install

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

const (
	flannelList = `{"cniVersion":"1.0.0","name":"cbr0","plugins":[
		{"type":"flannel","delegate":{"hairpinMode":true,"isDefaultGateway":true}},
		{"type":"portmap","capabilities":{"portMappings":true}}]}`
	bridgeConf = `{"cniVersion":"0.3.1","name":"mynet","type":"bridge","bridge":"cni0",
		"ipam":{"type":"host-local","subnet":"10.22.0.0/16"}}`
	braidList = `{"cniVersion":"1.0.0","name":"old","plugins":[{"type":"braid","clusterNetwork":"/x"}]}`
	shimList  = `{"cniVersion":"1.0.0","name":"thick","plugins":[{"type":"braid-shim","daemonSocketDir":"/run/braid"}]}`
)

// writeFiles creates name → content in a new temporary directory.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// wraps is braid's file (thin or thick) wrapping primary, as the host
// sees it.
func wraps(pluginType, primary string) string {
	return `{"cniVersion":"1.0.0","name":"braid-net","plugins":[{"type":"` + pluginType + `","clusterNetwork":"/etc/cni/net.d/` + primary + `"}]}`
}

func TestFindPrimary(t *testing.T) {
	const own = "00-braid.conflist"
	tests := []struct {
		name   string
		files  map[string]string
		want   string // "" wants a *NoPrimaryError, unless broken is set
		broken string // wants a *BrokenPrimaryError for this file
	}{
		{name: "only primary", files: map[string]string{"10-flannel.conflist": flannelList}, want: "10-flannel.conflist"},
		{name: "skips own file", files: map[string]string{own: flannelList, "10-flannel.conflist": flannelList}, want: "10-flannel.conflist"},
		{name: "alphabetical", files: map[string]string{"20-bridge.conf": bridgeConf, "10-flannel.conflist": flannelList, "99-x.json": bridgeConf}, want: "10-flannel.conflist"},
		{name: "json extension", files: map[string]string{"50-net.json": bridgeConf}, want: "50-net.json"},
		{name: "skips unparsable", files: map[string]string{"05-broken.conflist": "{not json", "10-bridge.conf": bridgeConf}, want: "10-bridge.conf"},
		{name: "skips conf without type", files: map[string]string{"05-x.conf": `{"cniVersion":"1.0.0","name":"x"}`, "10-bridge.conf": bridgeConf}, want: "10-bridge.conf"},
		{name: "skips list without plugins", files: map[string]string{"05-x.conflist": `{"cniVersion":"1.0.0","name":"x"}`, "10-bridge.conf": bridgeConf}, want: "10-bridge.conf"},
		{name: "skips conflist in a .conf file", files: map[string]string{"05-x.conf": flannelList, "10-bridge.conf": bridgeConf}, want: "10-bridge.conf"},
		{name: "skips another braid config", files: map[string]string{"00-braid-old.conflist": braidList, "10-bridge.conf": bridgeConf}, want: "10-bridge.conf"},
		{name: "skips a braid-shim config", files: map[string]string{"00-braid.conflist": shimList, "10-bridge.conf": bridgeConf}, want: "10-bridge.conf"},
		{name: "ignores other extensions and directories", files: map[string]string{"00-notes.txt": bridgeConf, "braid.d/braid.kubeconfig": "x", "a.conf/x": "", "30-bridge.conf": bridgeConf}, want: "30-bridge.conf"},
		{name: "none: empty directory", files: map[string]string{}},
		{name: "none: only own file", files: map[string]string{own: flannelList}},
		{name: "none: only unparsable", files: map[string]string{"10-broken.conf": "", "20-broken.conflist": "[]"}},
		// The primary braid's file wraps is held while it does not parse.
		{name: "holds the broken primary braid wraps", files: map[string]string{own: wraps("braid-shim", "10-flannel.conflist"), "10-flannel.conflist": "", "20-bridge.conf": bridgeConf}, broken: "10-flannel.conflist"},
		{name: "holds it for thin braid too", files: map[string]string{own: wraps("braid", "10-flannel.conflist"), "10-flannel.conflist": flannelList[:20]}, broken: "10-flannel.conflist"},
		{name: "holds it without a name", files: map[string]string{own: wraps("braid-shim", "10-x.conf"), "10-x.conf": `{"cniVersion":"1.0.0","type":"bridge"}`}, broken: "10-x.conf"},
		{name: "a valid config before the broken primary takes over", files: map[string]string{own: wraps("braid-shim", "10-flannel.conflist"), "05-bridge.conf": bridgeConf, "10-flannel.conflist": ""}, want: "05-bridge.conf"},
		{name: "a broken config braid does not wrap is passed over", files: map[string]string{own: wraps("braid-shim", "20-bridge.conf"), "10-new.conflist": "", "20-bridge.conf": bridgeConf}, want: "20-bridge.conf"},
		{name: "the primary braid wraps became a braid config", files: map[string]string{own: wraps("braid-shim", "10-x.conflist"), "10-x.conflist": braidList, "20-bridge.conf": bridgeConf}, want: "20-bridge.conf"},
		{name: "own file not braid's holds nothing", files: map[string]string{own: `{"cniVersion":"1.0.0","name":"x","plugins":[{"type":"bridge","clusterNetwork":"/etc/cni/net.d/10-x.conf"}]}`, "10-x.conf": "", "20-bridge.conf": bridgeConf}, want: "20-bridge.conf"},
		{name: "none: the primary braid wraps is gone", files: map[string]string{own: wraps("braid-shim", "10-flannel.conflist"), "05-broken.conf": ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeFiles(t, tt.files)
			got, err := FindPrimary(dir, own)
			if tt.broken != "" {
				var broken *BrokenPrimaryError
				if !errors.As(err, &broken) || broken.Path != filepath.Join(dir, tt.broken) {
					t.Fatalf("FindPrimary = %q, %v; want a *BrokenPrimaryError for %s", got, err, tt.broken)
				}
				return
			}
			if tt.want == "" {
				var none *NoPrimaryError
				if !errors.As(err, &none) {
					t.Fatalf("FindPrimary = %q, %v; want a *NoPrimaryError", got, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("FindPrimary: %v", err)
			}
			if want := filepath.Join(dir, tt.want); got != want {
				t.Errorf("FindPrimary = %s, want %s", got, want)
			}
		})
	}
}

func TestFindPrimaryMissingDir(t *testing.T) {
	_, err := FindPrimary(filepath.Join(t.TempDir(), "net.d"), "00-braid.conflist")
	var none *NoPrimaryError
	if !errors.As(err, &none) {
		t.Fatalf("FindPrimary on a missing directory = %v, want a *NoPrimaryError", err)
	}
}
