package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"

	"github.com/braid-cni/braid/e2e/framework"
)

const (
	// modeMultus is upstream Multus's thin plugin in braid's place,
	// measured when its binary is found (multusBinary).
	modeMultus = "multus"
	// multusEnv names the Multus binary to measure, overriding the cache.
	multusEnv = "BRAID_BENCH_MULTUS"
	// multusVersion is the release hack/bench/multus.sh builds by default.
	multusVersion = "v4.3.0"
)

// multusRBAC grants braid's user, which Multus runs as here, what Multus
// does beyond braid's rights: it writes network-status with a GET and an
// UPDATE of pods/status (braid patches), and its event recorder may patch
// an event to count repeats (braid only creates).
const multusRBAC = `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: bench-multus
rules:
  - apiGroups: [""]
    resources: ["pods/status"]
    verbs: ["update"]
  - apiGroups: [""]
    resources: ["events"]
    verbs: ["create", "patch"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: bench-multus
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: bench-multus
subjects:
  - kind: ServiceAccount
    name: braid
    namespace: kube-system
`

// multusBinary is the Multus thin plugin to measure: the file $BRAID_BENCH_MULTUS
// names if it is set (it must exist), else the one hack/bench/multus.sh
// builds into the user's cache, if it is there; "" when there is none.
func multusBinary() (string, error) {
	if path := os.Getenv(multusEnv); path != "" {
		if _, err := os.Stat(path); err != nil {
			return "", fmt.Errorf("$%s: %w", multusEnv, err)
		}
		return path, nil
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", nil // neither $XDG_CACHE_HOME nor $HOME: no cache to look in
	}
	path := filepath.Join(cache, "braid", "multus-"+multusVersion, "multus")
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return "", nil
	} else if err != nil {
		return "", fmt.Errorf("multus binary %s: %w", path, err)
	}
	return path, nil
}

// setUpMultus links the Multus binary where libcni finds it as type multus
// and grants braid's user Multus's further rights. Without a binary it says
// so on w and the multus mode is not measured.
func (e *env) setUpMultus(ctx context.Context, w io.Writer) error {
	path, err := multusBinary()
	if err != nil {
		return err
	}
	if path == "" {
		fmt.Fprintf(w, "bench: multus not measured: no $%s and no binary in the cache (hack/bench/multus.sh builds it)\n", multusEnv)
		return nil
	}
	dir := filepath.Join(e.work, modeMultus, "bin")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("multus bin dir: %w", err)
	}
	if err := os.Symlink(path, filepath.Join(dir, "multus")); err != nil {
		return fmt.Errorf("link multus %s: %w", path, err)
	}
	// Multus thick, if its two programs are next to the thin plugin.
	thick := true
	for _, p := range []string{"multus-daemon", "multus-shim"} {
		src := filepath.Join(filepath.Dir(path), p)
		if _, err := os.Stat(src); err != nil {
			thick = false
			break
		}
		if err := os.Symlink(src, filepath.Join(dir, p)); err != nil {
			return fmt.Errorf("link %s: %w", src, err)
		}
	}
	rbac := filepath.Join(e.work, "multus-rbac.yaml")
	if err := os.WriteFile(rbac, []byte(multusRBAC), 0o644); err != nil {
		return fmt.Errorf("multus RBAC: %w", err)
	}
	if err := framework.EnsureObjects(ctx, e.cp.AdminConfig(), rbac); err != nil {
		return fmt.Errorf("multus RBAC: %w", err)
	}
	fmt.Fprintf(w, "bench: multus: %s (thick: %v)\n", path, thick)
	e.multusDir, e.multusThick = dir, thick
	return nil
}

// newMultus is Multus's thin plugin as the node's only network, configured
// as its own thin entrypoint writes 00-multus.conf: the cluster network's
// conflist inlined as the first delegate, braid's kubeconfig, and the NADs
// the pod selects, from the API server. Its status write and events are
// on, as in any install with a kubeconfig.
//
// Not "clusterNetwork" set to the conflist's path, as braid is given it:
// Multus 4.2.2 to 4.3.0 load a .conflist path into CNI's typed plugin
// structs and cache re-marshalled bytes that keep only the standard keys,
// so its DEL hands host-local an ipam without "ranges" and fails (its ADD
// uses the file as read). A directory or an inlined delegate keeps the
// file's bytes.
func (e *env) newMultus(pod *corev1.Pod) (attacher, error) {
	cluster, err := os.ReadFile(e.clusterConf)
	if err != nil {
		return nil, fmt.Errorf("read cluster network %s: %w", e.clusterConf, err)
	}
	dir := filepath.Join(e.work, modeMultus)
	conf := map[string]any{
		"cniVersion": cniVersion, "name": "braid-net", "type": "multus",
		"kubeconfig": e.kubeconfig, "delegates": []json.RawMessage{cluster}, "binDir": e.pluginsDir,
		"cniDir": filepath.Join(dir, "cni"), "confDir": filepath.Join(dir, "net.d"),
		// Multus logs nothing below "error" on a call that succeeds; its
		// default level (panic) logs nothing at all.
		"logFile": filepath.Join(dir, "multus.log"), "logLevel": "error", "logToStderr": false,
	}
	return e.meta(modeMultus, pod, conf)
}
