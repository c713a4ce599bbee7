package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/braid-cni/braid/ctl"
)

// lintCtl runs braidctl lint in-process.
func lintCtl(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = ctl.Main(append([]string{"lint"}, args...), ctl.Streams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
	return out.String(), errOut.String(), code
}

// TestLintExamples: every manifest of examples/ passes lint with no error
// finding, also with --bin-dir naming the reference plugins (each binary
// is there and answers VERSION with the config's cniVersion).
func TestLintExamples(t *testing.T) {
	examples := filepath.Join(shared.root, "examples")
	// examples/sriov names plugins (sriov, host-device) this machine has not
	// installed: it is linted without --bin-dir.
	sriov := filepath.Join(examples, "sriov")
	for _, args := range [][]string{{examples}, {"--bin-dir", shared.pluginsDir, examples}, {sriov}} {
		stdout, stderr, code := lintCtl(t, args...)
		if code != 0 || strings.Contains(stdout, ": error: ") || stderr != "" {
			t.Errorf("lint %v: exit %d, want 0 and no error finding\nstdout:\n%s\nstderr:\n%s", args, code, stdout, stderr)
		}
	}
	// --bin-dir can fail: a directory without the plugins.
	stdout, _, code := lintCtl(t, "--bin-dir", t.TempDir(), filepath.Join(examples, "nad-bridge.yaml"))
	if code != 1 || !strings.Contains(stdout, `spec.config.type: error: plugin "bridge": no binary in`) {
		t.Errorf("lint with an empty --bin-dir: exit %d, want 1 and bridge missing\n%s", code, stdout)
	}
}

// TestLintBroken: each file of testdata/lint/broken holds one mistake,
// named in its "# mistake:" comment; lint exits 1 and names, as an error,
// the field of its "# want:" comment.
func TestLintBroken(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(shared.root, "e2e", "testdata", "lint", "broken", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 10 {
		t.Fatalf("%d broken manifests, want at least 10", len(files))
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".yaml"), func(t *testing.T) {
			mistake, want := brokenHeader(t, f)
			stdout, stderr, code := lintCtl(t, f)
			if code != 1 {
				t.Errorf("%s: exit %d, want 1\n%s%s", mistake, code, stdout, stderr)
			}
			var errs []string
			for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
				if strings.Contains(line, ": error: ") {
					errs = append(errs, line)
				}
			}
			if len(errs) != 1 || !strings.Contains(errs[0], ": "+want+": error: ") {
				t.Errorf("%s: want exactly one error, on %s; got:\n%s", mistake, want, stdout)
			}
		})
	}
}

// brokenHeader reads the "# mistake:" and "# want:" comments of a file.
func brokenHeader(t *testing.T, path string) (mistake, want string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "# mistake: "); ok {
			mistake = v
		}
		if v, ok := strings.CutPrefix(line, "# want: "); ok {
			want = v
		}
	}
	if mistake == "" || want == "" {
		t.Fatalf("%s: no '# mistake:' or '# want:' comment", path)
	}
	return mistake, want
}

// TestLintPassBraidAccepts: what lint passes braid runs. The bridge
// example NADs (blue, green) go to the API server as they are, with a NAD
// whose config has no name (lint only notes that braid names it after the
// NAD), and a pod with pod-short.yaml's annotation plus the unnamed network
// gets every interface from braid's ADD.
func TestLintPassBraidAccepts(t *testing.T) {
	examples := filepath.Join(shared.root, "examples")
	n := newNode(t, thin, "1.0.0")
	unnamed := filepath.Join(t.TempDir(), "unnamed.yaml")
	config, err := json.Marshal(n.bridgeNet("", 1, false))
	if err != nil {
		t.Fatal(err)
	}
	config = bytes.Replace(config, []byte(`"name":"",`), nil, 1)
	manifest := "apiVersion: k8s.cni.cncf.io/v1\nkind: NetworkAttachmentDefinition\nmetadata: {name: unnamed}\nspec:\n  config: '" + string(config) + "'\n"
	if err := os.WriteFile(unnamed, []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	files := []string{filepath.Join(examples, "nad-bridge.yaml"), filepath.Join(examples, "nad-conflist.yaml"), unnamed, filepath.Join(examples, "pod-short.yaml")}
	stdout, _, code := lintCtl(t, append([]string{"--bin-dir", shared.pluginsDir}, files...)...)
	if code != 0 || !strings.Contains(stdout, "default/unnamed: spec.config.name: info: ") {
		t.Fatalf("lint: exit %d, want 0 and an info on the missing name\n%s", code, stdout)
	}
	for _, f := range files[:3] {
		var obj nadv1.NetworkAttachmentDefinition
		readYAML(t, f, &obj)
		obj.ObjectMeta = metav1.ObjectMeta{Name: obj.Name, Namespace: n.namespace}
		if _, err := n.nads.K8sCniCncfIoV1().NetworkAttachmentDefinitions(n.namespace).Create(t.Context(), &obj, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create NAD %s from %s: %v", obj.Name, f, err)
		}
	}
	t.Cleanup(func() {
		deleteLink("br-blue")
		deleteLink("br-green")
	})
	var pod corev1.Pod
	readYAML(t, files[3], &pod)
	sb := n.sandbox(n.createPod("short-form", map[string]string{nadv1.NetworkAttachmentAnnot: pod.Annotations[nadv1.NetworkAttachmentAnnot] + ", unnamed@un0"}))
	sb.mustAdd()
	links := sb.links()
	for _, want := range []string{"eth0", "net1", "green0", "un0"} {
		if _, ok := links[want]; !ok {
			t.Errorf("after ADD the pod has %v, want %s", keys(links), want)
		}
	}
	sb.mustDel()
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
