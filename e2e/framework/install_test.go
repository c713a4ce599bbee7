package framework

import (
	"os"
	"path/filepath"
	"testing"
)

func TestParseMode(t *testing.T) {
	tests := []struct {
		in      string
		want    Mode
		wantErr bool
	}{
		{in: "thick", want: Thick},
		{in: "thin", want: Thin},
		{in: "", wantErr: true},
		{in: "Thick", wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseMode(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseMode(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

// TestModeManifests checks what InstallBraid takes from deployments/: every
// file exists, and the last holds the mode's DaemonSet, named and labelling
// its pods as App says, with one container; thick mode's ConfigMap too.
func TestModeManifests(t *testing.T) {
	for _, m := range []Mode{Thin, Thick} {
		t.Run(string(m), func(t *testing.T) {
			files := m.Manifests()
			for _, f := range files {
				if _, err := os.Stat(filepath.Join("..", "..", "deployments", f)); err != nil {
					t.Error(err)
				}
			}
			cm, ds, err := daemonSetOf(files[len(files)-1])
			if err != nil {
				t.Fatal(err)
			}
			if ds.Namespace != systemNamespace || ds.Name != m.App() || ds.Spec.Template.Labels["app"] != m.App() {
				t.Errorf("DaemonSet %s/%s with pod label app=%s, want %s/%s", ds.Namespace, ds.Name,
					ds.Spec.Template.Labels["app"], systemNamespace, m.App())
			}
			if n := len(ds.Spec.Template.Spec.Containers); n != 1 {
				t.Errorf("DaemonSet %s has %d containers, want 1", ds.Name, n)
			}
			if (cm != nil) != (m == Thick) {
				t.Errorf("ConfigMap %v in %s mode", cm != nil, m)
			}
			if cm != nil && cm.Data["braidd.json"] == "" {
				t.Errorf("ConfigMap %s has no braidd.json", cm.Name)
			}
		})
	}
}
