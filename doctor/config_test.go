package doctor

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckConfDir(t *testing.T) {
	tests := []struct {
		name       string
		files      map[string]any
		want       Status
		wantDetail string // substring
		wantBraid  string // base name of braid's file, "" for none
	}{
		{
			name:  "braid wins",
			files: map[string]any{"00-braid.conflist": braidList(nil), "10-cluster.conflist": bridgeList("cluster")},
			want:  OK, wantDetail: "00-braid.conflist wins and is braid's", wantBraid: "00-braid.conflist",
		},
		{
			name:  "another config wins",
			files: map[string]any{"05-calico.conflist": bridgeList("calico"), "10-braid.conflist": braidList(nil)},
			want:  Fail, wantDetail: "05-calico.conflist wins, not braid's", wantBraid: "10-braid.conflist",
		},
		{
			name: "broken files are passed over",
			files: map[string]any{
				"00-broken.conflist": "{not json", "01-empty.conflist": map[string]any{"name": "x", "plugins": []any{}},
				"02-untyped.conf": map[string]any{"name": "x"}, "10-braid.conflist": braidList(nil),
			},
			want: OK, wantDetail: "10-braid.conflist wins", wantBraid: "10-braid.conflist",
		},
		{
			name:  "single config file of the shim",
			files: map[string]any{"00-braid.conf": map[string]any{"cniVersion": "1.0.0", "name": "b", "type": "braid-shim"}},
			want:  OK, wantBraid: "00-braid.conf",
		},
		{
			name:  "no braid config",
			files: map[string]any{"10-cluster.conflist": bridgeList("cluster"), "README.md": "x"},
			want:  Fail, wantDetail: "10-cluster.conflist wins and is not braid's; no braid config",
		},
		{name: "empty dir", want: Fail, wantDetail: "no usable CNI config"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, v := range tt.files {
				writeFile(t, filepath.Join(dir, name), v)
			}
			b, res := CheckConfDir(dir)
			if res.Status != tt.want || !strings.Contains(res.Detail, tt.wantDetail) {
				t.Errorf("result %+v, want %s containing %q", res, tt.want, tt.wantDetail)
			}
			if res.Status != OK && res.Fix == "" {
				t.Errorf("no fix for %+v", res)
			}
			switch {
			case tt.wantBraid == "" && b != nil:
				t.Errorf("braid file %s, want none", b.Path)
			case tt.wantBraid != "" && (b == nil || filepath.Base(b.Path) != tt.wantBraid):
				t.Errorf("braid file %+v, want %s", b, tt.wantBraid)
			}
		})
	}
}

// The plugin config doctor hands on is what the runtime gives braid: the
// list's name and cniVersion injected.
func TestCheckConfDirInjectsNameAndVersion(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "00-braid.conflist"), braidList(map[string]any{"clusterNetwork": "/x"}))
	b, _ := CheckConfDir(dir)
	if b == nil {
		t.Fatal("no braid file")
	}
	var got map[string]any
	if err := json.Unmarshal(b.Plugin, &got); err != nil {
		t.Fatal(err)
	}
	if got["name"] != "braid-net" || got["cniVersion"] != "1.0.0" || got["type"] != "braid" || got["clusterNetwork"] != "/x" {
		t.Errorf("plugin config %v", got)
	}
}

func TestCheckConfig(t *testing.T) {
	good := []byte(`{"cniVersion":"1.0.0","name":"n","type":"braid","clusterNetwork":"/c","daemonSocketDir":"/run/braid"}`)
	conf, res := CheckConfig(&BraidFile{Path: "00-braid.conflist", Plugin: good})
	if conf == nil || res.Status != OK || !strings.Contains(res.Detail, "thick") {
		t.Errorf("good config: %+v", res)
	}
	bad := []byte(`{"cniVersion":"1.0.0","name":"n","type":"braid","clusterNetwork":"/c","logLevel":"loud"}`)
	conf, res = CheckConfig(&BraidFile{Path: "00-braid.conflist", Plugin: bad})
	if conf != nil || res.Status != Fail || !strings.Contains(res.Detail, "logLevel") {
		t.Errorf("bad config: %+v", res)
	}
}

func TestCheckClusterNetwork(t *testing.T) {
	dir := t.TempDir()
	present := filepath.Join(dir, "10-cluster.conflist")
	writeFile(t, present, bridgeList("cluster"))
	confDir := filepath.Join(dir, "multus")
	writeFile(t, filepath.Join(confDir, "named.conf"), map[string]any{"cniVersion": "1.0.0", "name": "named", "type": "bridge"})
	tests := []struct {
		ref        string
		want       Status
		wantDetail string
	}{
		{ref: present, want: OK, wantDetail: "cluster"},
		{ref: "named", want: OK, wantDetail: "named"},
		{ref: filepath.Join(dir, "gone.conflist"), want: Fail, wantDetail: "gone.conflist"},
		{ref: "missing", want: Fail, wantDetail: "missing"},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.ref), func(t *testing.T) {
			data, _ := json.Marshal(map[string]any{"cniVersion": "1.0.0", "name": "n", "type": "braid", "clusterNetwork": tt.ref, "confDir": confDir})
			conf, res := CheckConfig(&BraidFile{Plugin: data})
			if conf == nil {
				t.Fatalf("config: %+v", res)
			}
			res = CheckClusterNetwork(context.Background(), conf, Options{})
			if res.Status != tt.want || !strings.Contains(res.Detail, tt.wantDetail) {
				t.Errorf("result %+v, want %s containing %q", res, tt.want, tt.wantDetail)
			}
		})
	}
}
