package ctl

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// explainConfig writes a braid conflist whose cluster network and confDir
// are in testdata/explain, and returns its path.
func explainConfig(t *testing.T, extra map[string]any) string {
	t.Helper()
	cluster, err := filepath.Abs("testdata/explain/cluster.conflist")
	if err != nil {
		t.Fatal(err)
	}
	braid := map[string]any{
		"type":           "braid",
		"clusterNetwork": cluster,
		"confDir":        filepath.Dir(cluster) + "/confdir",
		"capabilities":   map[string]any{"portMappings": true},
	}
	for k, v := range extra {
		braid[k] = v
	}
	data, err := json.Marshal(map[string]any{"cniVersion": "1.0.0", "name": "braid-net", "plugins": []any{braid}})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "00-braid.conflist")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func runMain(args ...string) (stdout, stderr string, code int) {
	var out, errOut bytes.Buffer
	code = Main(args, Streams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
	return out.String(), errOut.String(), code
}

// TestExplainGolden runs explain offline on the pods of
// testdata/explain/pods.yaml; stdout, stderr and the exit code are golden.
func TestExplainGolden(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		code  int
		extra map[string]any // braid config keys
	}{
		{name: "short", args: []string{"short"}},
		{name: "json-form", args: []string{"json"}},
		{name: "json-form-output", args: []string{"json", "-o", "json"}},
		{name: "yaml-output", args: []string{"short", "-o", "yaml"}},
		{name: "default-route", args: []string{"gateway"}},
		{name: "runtime-config", args: []string{"plain", "--runtime-config", `{"portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}], "bandwidth": {"ingressRate": 1}}`}},
		{name: "default-networks", args: []string{"plain"}, extra: map[string]any{"defaultNetworks": []string{"default/blue"}}},
		{name: "device-backed", args: []string{"sriov"}},
		{name: "missing-nad", args: []string{"missing-nad"}, code: 1},
		{name: "bad-annotation", args: []string{"bad-annotation"}, code: 1},
		{name: "interface-twice", args: []string{"twice"}, code: 1},
		{name: "two-gateways", args: []string{"two-gateways"}, code: 1},
		{name: "broken-nad", args: []string{"broken-nad"}, code: 1},
		{name: "isolation", args: []string{"isolated"}, code: 1, extra: map[string]any{"namespaceIsolation": true, "globalNamespaces": "kube-system"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"explain", "--config", explainConfig(t, tt.extra),
				"--pod-file", "testdata/explain/pods.yaml", "--nad-file", "testdata/explain/nads.yaml"}, tt.args...)
			stdout, stderr, code := runMain(args...)
			if code != tt.code {
				t.Errorf("exit code %d, want %d; stderr: %s", code, tt.code, stderr)
			}
			if tt.code != 0 && stdout != "" {
				t.Errorf("a refused pod printed a plan: %s", stdout)
			}
			golden(t, "explain/"+tt.name+".golden", []byte(fmt.Sprintf("exit %d\n--- stdout\n%s--- stderr\n%s", code, stdout, stderr)))
		})
	}
}

// TestExplainJSONIsThePlan: -o json decodes into Explanation and carries the
// delegate configs byte for byte (modulo indentation) as the NADs hold them.
func TestExplainJSONIsThePlan(t *testing.T) {
	stdout, stderr, code := runMain("explain", "short", "-o", "json", "--config", explainConfig(t, nil),
		"--pod-file", "testdata/explain/pods.yaml", "--nad-file", "testdata/explain/nads.yaml")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var ex Explanation
	if err := json.Unmarshal([]byte(stdout), &ex); err != nil {
		t.Fatal(err)
	}
	var ifs, chains []string
	for _, a := range ex.Attachments {
		ifs = append(ifs, a.Interface)
		var chain []string
		for _, p := range a.Plugins {
			chain = append(chain, p.Type)
		}
		chains = append(chains, strings.Join(chain, "+"))
	}
	if got, want := strings.Join(ifs, " "), "eth0 net1 green0 net3"; got != want {
		t.Errorf("interfaces %q, want %q", got, want)
	}
	if got, want := strings.Join(chains, " "), "bridge+portmap bridge bridge+tuning bridge"; got != want {
		t.Errorf("chains %q, want %q", got, want)
	}
	filenet, err := os.ReadFile("testdata/explain/confdir/filenet.conf")
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	if err := json.Compact(&want, filenet); err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	if err := json.Compact(&got, ex.Attachments[3].Config); err != nil {
		t.Fatal(err)
	}
	if got.String() != want.String() {
		t.Errorf("net3 config %s, want the confDir file %s", got.String(), want.String())
	}
}

// TestExplainKeepsTheCNIError: the builder's *types.Error comes back
// unchanged, code included.
func TestExplainKeepsTheCNIError(t *testing.T) {
	conf, err := os.ReadFile(explainConfig(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		annotation string
		code       uint
		msg        string
	}{
		{"red", types.ErrTryAgainLater, "network-attachment-definition p/red not found"},
		{"[{", types.ErrInvalidNetworkConfig, "annotation k8s.v1.cni.cncf.io/networks"},
	}
	for _, tt := range tests {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "p", Name: "x",
			Annotations: map[string]string{"k8s.v1.cni.cncf.io/networks": tt.annotation}}}
		_, err := Explain(t.Context(), ExplainInput{Config: conf, Pod: pod, NADs: explainNADs{}})
		var cniErr *types.Error
		if !errors.As(err, &cniErr) || cniErr.Code != tt.code || !strings.Contains(cniErr.Msg, tt.msg) {
			t.Errorf("annotation %q: error %#v, want code %d containing %q", tt.annotation, err, tt.code, tt.msg)
		}
	}
}

// TestExplainConfigForms: a plain plugin config works as well as a
// conflist; a conflist that is not braid's is refused.
func TestExplainConfigForms(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "x"}}
	cluster, err := filepath.Abs("testdata/explain/cluster.conflist")
	if err != nil {
		t.Fatal(err)
	}
	plain := fmt.Sprintf(`{"cniVersion": "1.0.0", "name": "braid-net", "type": "braid", "clusterNetwork": %q}`, cluster)
	ex, err := Explain(t.Context(), ExplainInput{Config: []byte(plain), Pod: pod, NADs: explainNADs{}})
	if err != nil {
		t.Fatal(err)
	}
	if len(ex.Attachments) != 1 || ex.Attachments[0].Network != "cluster" || !ex.Attachments[0].Cluster {
		t.Errorf("attachments %+v, want the cluster network only", ex.Attachments)
	}
	other := `{"cniVersion": "1.0.0", "name": "x", "plugins": [{"type": "bridge"}]}`
	if _, err := Explain(t.Context(), ExplainInput{Config: []byte(other), Pod: pod}); err == nil || !strings.Contains(err.Error(), "does not start with braid") {
		t.Errorf("a bridge conflist as braid's config: %v", err)
	}
	bad := fmt.Sprintf(`{"cniVersion": "1.0.0", "name": "braid-net", "type": "braid", "clusterNetwork": %q, "logLevel": "loud"}`, cluster)
	var cniErr *types.Error
	if _, err := Explain(t.Context(), ExplainInput{Config: []byte(bad), Pod: pod}); !errors.As(err, &cniErr) || !strings.Contains(cniErr.Msg, "logLevel") {
		t.Errorf("a bad braid config: %v, want the plugin's code 7 naming logLevel", err)
	}
}

// TestExplainPodSelection: a pod file with several pods needs the pod's
// name; "-" reads the pod from stdin.
func TestExplainPodSelection(t *testing.T) {
	config := explainConfig(t, nil)
	_, stderr, code := runMain("explain", "--config", config, "--pod-file", "testdata/explain/pods.yaml")
	if code != 1 || !strings.Contains(stderr, "pods match, want exactly one (name the pod)") {
		t.Errorf("several pods, no name: exit %d, stderr %q", code, stderr)
	}
	pods, err := os.ReadFile("testdata/explain/pods.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	code = Main([]string{"explain", "plain", "-o", "json", "--config", config, "--pod-file", "-"},
		Streams{In: bytes.NewReader(pods), Out: &out, ErrOut: &errOut})
	var ex Explanation
	if code != 0 || json.Unmarshal(out.Bytes(), &ex) != nil || ex.Pod != "default/plain" || len(ex.Attachments) != 1 {
		t.Errorf("pod from stdin: exit %d, stdout %s, stderr %s", code, out.String(), errOut.String())
	}
}
