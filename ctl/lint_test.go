package ctl

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/braid-cni/braid/lint"
)

// runLintMain runs braidctl with args and stdin; it returns the exit code,
// stdout and stderr.
func runLintMain(stdin string, args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := Main(args, Streams{In: strings.NewReader(stdin), Out: &out, ErrOut: &errOut})
	return code, out.String(), errOut.String()
}

// TestLintGolden lints three files together (a pod in one refers to NADs
// in the others); the full text output and the exit code are golden.
func TestLintGolden(t *testing.T) {
	code, stdout, stderr := runLintMain("", "lint", "testdata/lint/nads.yaml", "testdata/lint/pods.yaml", "testdata/lint/list.json")
	golden(t, "lint/multi-file.golden", []byte(fmt.Sprintf("exit %d\n--- stdout\n%s--- stderr\n%s", code, stdout, stderr)))
	if code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
}

// TestLintJSON: -o json prints the findings array, the same as the text.
func TestLintJSON(t *testing.T) {
	code, stdout, _ := runLintMain("", "lint", "-o", "json", "testdata/lint/nads.yaml")
	if code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	var got []lint.Finding
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("decode %q: %v", stdout, err)
	}
	_, text, _ := runLintMain("", "lint", "testdata/lint/nads.yaml")
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(got) != len(lines) {
		t.Fatalf("%d findings in JSON, %d lines of text:\n%s", len(got), len(lines), text)
	}
	for i, f := range got {
		if f.String() != lines[i] {
			t.Errorf("finding %d: JSON %q, text %q", i, f.String(), lines[i])
		}
	}
}

// TestLintExitCodes: warnings and infos alone pass; stdin is read for "-";
// nothing to report prints nothing; an empty result is [] in JSON.
func TestLintExitCodes(t *testing.T) {
	const onlyWarning = `apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata: {name: from-file, namespace: apps}
`
	const clean = `apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata: {name: blue, namespace: apps}
spec:
  config: '{"cniVersion": "1.0.0", "name": "blue", "type": "bridge"}'
`
	tests := []struct {
		name, stdin string
		args        []string
		code        int
		stdout      string
	}{
		{"warning only", onlyWarning, []string{"lint", "-"}, 0,
			"<stdin>: NetworkAttachmentDefinition apps/from-file: spec.config: warning: is empty: braid then reads the config named \"from-file\" from its confDir on each node; make sure it is there\n"},
		{"clean", clean, []string{"lint", "-"}, 0, ""},
		{"clean JSON", clean, []string{"lint", "-o", "json", "-"}, 0, "[]\n"},
		{"error", clean + "---\nkind: Pod\n", []string{"lint", "-"}, 1,
			"<stdin>: document #2: -: error: not a Kubernetes object: apiVersion and kind are required\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runLintMain(tt.stdin, tt.args...)
			if code != tt.code || stdout != tt.stdout || stderr != "" {
				t.Errorf("got exit %d, stdout %q, stderr %q; want exit %d, stdout %q", code, stdout, stderr, tt.code, tt.stdout)
			}
		})
	}
}

// TestLintMissingFile: a file that cannot be read is an error naming it.
func TestLintMissingFile(t *testing.T) {
	code, _, stderr := runLintMain("", "lint", "testdata/lint/nope.yaml")
	if code != 1 || !strings.Contains(stderr, "nope.yaml") {
		t.Errorf("exit %d, stderr %q; want 1 and the file named", code, stderr)
	}
}

// TestLintDirectory: a directory stands for its manifests, sorted.
func TestLintDirectory(t *testing.T) {
	_, fromDir, _ := runLintMain("", "lint", "testdata/lint")
	_, fromFiles, _ := runLintMain("", "lint", "testdata/lint/list.json", "testdata/lint/nads.yaml", "testdata/lint/pods.yaml")
	if fromDir == "" || strings.ReplaceAll(fromDir, "testdata/lint/", "") != strings.ReplaceAll(fromFiles, "testdata/lint/", "") {
		t.Errorf("directory:\n%s\nfiles:\n%s", fromDir, fromFiles)
	}
}
