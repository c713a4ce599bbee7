package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/containernetworking/plugins/pkg/testutils"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/clientcmd"
)

// modeMultusThick is upstream Multus thick: multus-shim forwarding to
// multus-daemon, measured when both are found next to the thin plugin.
const modeMultusThick = "multus-thick"

// saDir is where client-go's in-cluster config reads the service account's
// token and CA; multus-daemon builds its client from nothing else.
const saDir = "/var/run/secrets/kubernetes.io/serviceaccount"

// multusDaemonScript runs multus-daemon in a mount namespace of its own
// ("unshare --propagation slave", so that the network namespaces the bench
// mounts later still reach it) whose /run is a tmpfs holding braid's token
// and CA where the in-cluster config looks, with the host's /run/netns
// bound back into it. The host's /run is untouched. $1 is the work dir, $2
// the daemon, $3 its config.
const multusDaemonScript = `set -e
mkdir -p "$1/host-netns"
mount --rbind /run/netns "$1/host-netns"
mount -t tmpfs tmpfs /run
mkdir -p /run/netns ` + saDir + `
mount --rbind "$1/host-netns" /run/netns
cp "$1/sa/token" "$1/sa/ca.crt" ` + saDir + `/
exec "$2" -config "$3"
`

// startMultusDaemon writes multus-daemon's config (socket, logs, the
// delegates dir and the same cniDir layout as thin Multus), starts it as
// braid's user on benchNode and waits for its socket to answer. It returns
// the socket directory the shim is given.
func (e *env) startMultusDaemon(ctx context.Context) (string, error) {
	dir := filepath.Join(e.work, modeMultusThick)
	for _, d := range []string{filepath.Join(dir, "sa"), filepath.Join(dir, "autoconf"), filepath.Join(dir, "cni-conf")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return "", fmt.Errorf("multus-daemon dir: %w", err)
		}
	}
	host, port, err := e.writeServiceAccount(filepath.Join(dir, "sa"))
	if err != nil {
		return "", err
	}
	// /run/netns must be a mount before the daemon's namespace copies the
	// host's: testutils makes it one with its first namespace.
	ns, err := testutils.NewNS()
	if err != nil {
		return "", fmt.Errorf("multus-daemon: first netns: %w", err)
	}
	_ = ns.Close()
	_ = testutils.UnmountNS(ns)
	socketDir := filepath.Join(dir, "run")
	conf := map[string]any{
		"cniVersion": cniVersion, "socketDir": socketDir,
		"logFile": filepath.Join(dir, "multus-daemon.log"), "logLevel": "error", "logToStderr": false,
		// As the thick install runs it: it writes 00-multus.conf for the
		// primary network it finds in multusAutoconfigDir (the cluster
		// conflist) into cniConfigDir, and watches both. With a config file
		// of the user's instead, multus-daemon 4.3.0 exits once started
		// (main waits only for the config manager's goroutines). The shim's
		// config below is not that file: it names the conflist's path as
		// clusterNetwork, whose DEL fails (see newMultus).
		"multusConfigFile":    "auto",
		"multusAutoconfigDir": filepath.Join(dir, "autoconf"),
		"cniConfigDir":        filepath.Join(dir, "cni-conf"),
	}
	cluster, err := os.ReadFile(e.clusterConf)
	if err != nil {
		return "", fmt.Errorf("read cluster network %s: %w", e.clusterConf, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "autoconf", filepath.Base(e.clusterConf)), cluster, 0o644); err != nil {
		return "", fmt.Errorf("multus-daemon: %w", err)
	}
	config := filepath.Join(dir, "daemon-config.json")
	if err := writeJSON(config, conf); err != nil {
		return "", fmt.Errorf("multus-daemon config: %w", err)
	}
	daemon := filepath.Join(e.multusDir, "multus-daemon")
	cmd := exec.Command("unshare", "--mount", "--propagation", "slave", "--", "sh", "-c", multusDaemonScript, "sh", dir, daemon, config)
	cmd.Env = append(os.Environ(), "KUBERNETES_SERVICE_HOST="+host, "KUBERNETES_SERVICE_PORT="+port, "MULTUS_NODE_NAME="+benchNode)
	log, err := os.Create(filepath.Join(dir, "stderr.log"))
	if err != nil {
		return "", fmt.Errorf("multus-daemon log: %w", err)
	}
	defer func() { _ = log.Close() }()
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("start multus-daemon: %w", err)
	}
	e.multusDaemon = cmd
	if err := waitHealthy(ctx, filepath.Join(socketDir, "multus.sock"), 60*time.Second); err != nil {
		return "", fmt.Errorf("multus-daemon (log %s): %w", log.Name(), err)
	}
	return socketDir, nil
}

// writeServiceAccount writes the token and CA of braid's kubeconfig into
// dir, as a pod's service account volume holds them, and returns the API
// server's host and port.
func (e *env) writeServiceAccount(dir string) (host, port string, err error) {
	kc, err := clientcmd.LoadFromFile(e.kubeconfig)
	if err != nil {
		return "", "", fmt.Errorf("read kubeconfig %s: %w", e.kubeconfig, err)
	}
	ctx, ok := kc.Contexts[kc.CurrentContext]
	if !ok {
		return "", "", fmt.Errorf("kubeconfig %s: no current context", e.kubeconfig)
	}
	cluster, user := kc.Clusters[ctx.Cluster], kc.AuthInfos[ctx.AuthInfo]
	if cluster == nil || user == nil || user.Token == "" {
		return "", "", fmt.Errorf("kubeconfig %s: no cluster or token", e.kubeconfig)
	}
	if err := os.WriteFile(filepath.Join(dir, "token"), []byte(user.Token), 0o600); err != nil {
		return "", "", fmt.Errorf("write token: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ca.crt"), cluster.CertificateAuthorityData, 0o644); err != nil {
		return "", "", fmt.Errorf("write CA: %w", err)
	}
	u, err := url.Parse(cluster.Server)
	if err != nil {
		return "", "", fmt.Errorf("kubeconfig %s: server: %w", e.kubeconfig, err)
	}
	if u.Port() == "" {
		return "", "", fmt.Errorf("kubeconfig %s: server %q has no port", e.kubeconfig, cluster.Server)
	}
	return u.Hostname(), u.Port(), nil
}

// waitHealthy polls multus-daemon's /healthz on socket until it answers 200.
func waitHealthy(ctx context.Context, socket string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", socket)
		},
	}}
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://multus/healthz", nil)
		if err != nil {
			return err
		}
		if resp, err := client.Do(req); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no answer on %s: %w", socket, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// stopMultusDaemon ends multus-daemon, if it runs.
func (e *env) stopMultusDaemon() {
	if e.multusDaemon == nil || e.multusDaemon.Process == nil {
		return
	}
	_ = e.multusDaemon.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- e.multusDaemon.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = e.multusDaemon.Process.Kill()
		<-done
	}
}

// newMultusThick is multus-shim as the node's only network, forwarding to
// the daemon on socketDir, with the same inlined cluster delegate and
// cniDir layout as thin Multus (the daemon merges its own config's keys
// into what the shim sends).
func (e *env) newMultusThick(pod *corev1.Pod, socketDir string) (attacher, error) {
	cluster, err := os.ReadFile(e.clusterConf)
	if err != nil {
		return nil, fmt.Errorf("read cluster network %s: %w", e.clusterConf, err)
	}
	if socketDir == "" {
		return nil, errors.New("multus-daemon not started")
	}
	dir := filepath.Join(e.work, modeMultusThick)
	conf := map[string]any{
		"cniVersion": cniVersion, "name": "braid-net", "type": "multus-shim", "daemonSocketDir": socketDir,
		"delegates": []json.RawMessage{cluster}, "binDir": e.pluginsDir,
		"cniDir": filepath.Join(dir, "cni"), "confDir": filepath.Join(dir, "net.d"),
		"logFile": filepath.Join(dir, "multus-shim.log"), "logLevel": "error", "logToStderr": false,
	}
	return e.meta(modeMultusThick, pod, conf)
}
