package install

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
)

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// node lays out a fake node: an image with the braid binary, the host's CNI
// bin and config directories and a service account directory.
type node struct {
	settings Settings
	hostConf string // where the container sees the host's /etc/cni/net.d
}

func newNode(t *testing.T, primaries map[string]string) node {
	t.Helper()
	image := writeFiles(t, map[string]string{"braid": "#!/bin/sh\n"})
	sa := writeFiles(t, map[string]string{"token": "token-1", "ca.crt": "CA"})
	hostConf := writeFiles(t, primaries)
	s := Settings{
		BraidBinary:   filepath.Join(image, "braid"),
		CNIBinDir:     t.TempDir(),
		CNIConfDir:    hostConf,
		SADir:         sa,
		APIServer:     "https://10.96.0.1:443",
		OwnConfigName: "00-braid.conflist",
		CleanupOnExit: true,
		Interval:      5 * time.Millisecond,
		Options:       Options{HostConfDir: "/etc/cni/net.d", Kubeconfig: "/etc/cni/net.d/braid.d/braid.kubeconfig"},
	}
	return node{settings: s, hostConf: hostConf}
}

func (n node) own() string        { return filepath.Join(n.hostConf, n.settings.OwnConfigName) }
func (n node) kubeconfig() string { return filepath.Join(n.hostConf, "braid.d", "braid.kubeconfig") }

func TestSync(t *testing.T) {
	n := newNode(t, map[string]string{"10-flannel.conflist": flannelList})
	if err := Sync(n.settings, discard()); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	conf, err := os.ReadFile(n.own())
	if err != nil {
		t.Fatal(err)
	}
	c, _ := pluginEntry(t, conf)
	if c.ClusterNetwork != "/etc/cni/net.d/10-flannel.conflist" || c.Kubeconfig != n.settings.Options.Kubeconfig {
		t.Errorf("clusterNetwork, kubeconfig = %q, %q", c.ClusterNetwork, c.Kubeconfig)
	}
	// Its own config is not taken for the primary on the next round.
	if err := Sync(n.settings, discard()); err != nil {
		t.Fatalf("second Sync: %v", err)
	}
	if again, _ := os.ReadFile(n.own()); !bytes.Equal(again, conf) {
		t.Errorf("second Sync changed the config:\n%s\nwant\n%s", again, conf)
	}
	info, err := os.Stat(n.kubeconfig())
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("kubeconfig mode = %v, want 0600", info.Mode().Perm())
	}
}

func TestSyncRotatedToken(t *testing.T) {
	n := newNode(t, map[string]string{"10-flannel.conflist": flannelList})
	for _, token := range []string{"token-1", "token-2"} {
		if err := os.WriteFile(filepath.Join(n.settings.SADir, "token"), []byte(token), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := Sync(n.settings, discard()); err != nil {
			t.Fatalf("Sync: %v", err)
		}
		cfg, err := clientcmd.LoadFromFile(n.kubeconfig())
		if err != nil {
			t.Fatal(err)
		}
		if got := cfg.AuthInfos[cfg.Contexts[cfg.CurrentContext].AuthInfo].Token; got != token {
			t.Errorf("kubeconfig token = %q, want %q", got, token)
		}
	}
}

func TestSyncNewPrimary(t *testing.T) {
	n := newNode(t, nil)
	var none *NoPrimaryError
	if err := Sync(n.settings, discard()); !errors.As(err, &none) {
		t.Fatalf("Sync without a primary = %v, want a *NoPrimaryError", err)
	}
	if _, err := os.Stat(n.own()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("config written without a primary: %v", err)
	}
	// A primary appears, then one that sorts before it replaces it.
	steps := []struct{ name, content string }{
		{"20-bridge.conf", bridgeConf},
		{"10-flannel.conflist", flannelList},
	}
	for _, step := range steps {
		if err := os.WriteFile(filepath.Join(n.hostConf, step.name), []byte(step.content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := Sync(n.settings, discard()); err != nil {
			t.Fatalf("Sync after adding %s: %v", step.name, err)
		}
		conf, err := os.ReadFile(n.own())
		if err != nil {
			t.Fatal(err)
		}
		if c, _ := pluginEntry(t, conf); c.ClusterNetwork != "/etc/cni/net.d/"+step.name {
			t.Errorf("after adding %s: clusterNetwork = %q", step.name, c.ClusterNetwork)
		}
	}
}

// TestSyncKeepsBrokenPrimary: the installer, too, leaves braid's config as
// it is while the primary it wraps is truncated, rather than switching to
// the next config, and follows the primary once it is whole again.
func TestSyncKeepsBrokenPrimary(t *testing.T) {
	n := newNode(t, map[string]string{"10-flannel.conflist": flannelList, "20-bridge.conf": bridgeConf})
	if err := Sync(n.settings, discard()); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	before, err := os.ReadFile(n.own())
	if err != nil {
		t.Fatal(err)
	}
	primary := filepath.Join(n.hostConf, "10-flannel.conflist")
	if err := os.Truncate(primary, 0); err != nil {
		t.Fatal(err)
	}
	var broken *BrokenPrimaryError
	if err := Sync(n.settings, discard()); !errors.As(err, &broken) || broken.Path != primary {
		t.Fatalf("Sync with the primary truncated = %v, want a *BrokenPrimaryError for %s", err, primary)
	}
	if after, _ := os.ReadFile(n.own()); !bytes.Equal(after, before) {
		t.Fatalf("Sync with the primary truncated changed braid's config:\n%s\nwant\n%s", after, before)
	}
	if err := os.WriteFile(primary, []byte(`{"cniVersion":"1.1.0","name":"cbr0","plugins":[{"type":"flannel"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Sync(n.settings, discard()); err != nil {
		t.Fatalf("Sync with the primary whole again: %v", err)
	}
	after, err := os.ReadFile(n.own())
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := pluginEntry(t, after); c.ClusterNetwork != "/etc/cni/net.d/10-flannel.conflist" || c.CNIVersion != "1.1.0" {
		t.Errorf("after the rewrite: clusterNetwork %q, cniVersion %q; want the new flannel", c.ClusterNetwork, c.CNIVersion)
	}
}

func TestSyncWarnsWhenPrimarySortsFirst(t *testing.T) {
	n := newNode(t, map[string]string{"00-aaa.conflist": flannelList})
	var logs bytes.Buffer
	if err := Sync(n.settings, slog.New(slog.NewTextHandler(&logs, nil))); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	if !strings.Contains(logs.String(), "level=WARN") {
		t.Errorf("no warning in logs:\n%s", logs.String())
	}
}

func TestRun(t *testing.T) {
	tests := []struct {
		name     string
		cleanup  bool
		wantConf bool
	}{
		{name: "cleanup on exit", cleanup: true, wantConf: false},
		{name: "no cleanup", cleanup: false, wantConf: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := newNode(t, map[string]string{"10-flannel.conflist": flannelList})
			n.settings.CleanupOnExit = tt.cleanup
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- Run(ctx, n.settings, discard()) }()
			waitFor(t, n.own())
			cancel()
			if err := <-done; err != nil {
				t.Fatalf("Run: %v", err)
			}
			if _, err := os.Stat(n.own()); (err == nil) != tt.wantConf {
				t.Errorf("config present = %v, want %v", err == nil, tt.wantConf)
			}
			if _, err := os.Stat(filepath.Join(n.settings.CNIBinDir, "braid")); err != nil {
				t.Errorf("binary not left in place: %v", err)
			}
		})
	}
}

func TestRunMissingBinary(t *testing.T) {
	n := newNode(t, nil)
	n.settings.BraidBinary = filepath.Join(t.TempDir(), "nope")
	if err := Run(context.Background(), n.settings, discard()); err == nil {
		t.Fatal("Run without a binary succeeded")
	}
}

// waitFor waits up to five seconds for path to exist.
func waitFor(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(path); err == nil {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("%s did not appear", path)
}

func TestParseFlags(t *testing.T) {
	env := map[string]string{"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"}
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		check   func(t *testing.T, s Settings)
		wantErr bool
	}{
		{name: "defaults", env: env, check: func(t *testing.T, s Settings) {
			if s.APIServer != "https://[fd00::1]:443" || s.Interval != time.Minute || !s.CleanupOnExit || s.Options.BinDir != "/opt/cni/bin" {
				t.Errorf("defaults = %+v", s)
			}
			if p, _ := s.KubeconfigPath(); p != "/host/etc/cni/net.d/braid.d/braid.kubeconfig" {
				t.Errorf("KubeconfigPath = %q", p)
			}
		}},
		{name: "options", env: env, args: []string{"--name=x", "--namespace-isolation", "--global-namespaces=a,b", "--cleanup-on-exit=false"}, check: func(t *testing.T, s Settings) {
			if s.Options.Name != "x" || !s.Options.NamespaceIsolation || s.Options.GlobalNamespaces != "a,b" || s.CleanupOnExit {
				t.Errorf("settings = %+v", s)
			}
		}},
		{name: "no API server", wantErr: true},
		{name: "API server flag without env", args: []string{"--api-server=https://api:6443"}, check: func(t *testing.T, s Settings) {
			if s.APIServer != "https://api:6443" {
				t.Errorf("APIServer = %q", s.APIServer)
			}
		}},
		{name: "bad API server", env: env, args: []string{"--api-server=api:6443"}, wantErr: true},
		{name: "kubeconfig outside conf dir", env: env, args: []string{"--host-kubeconfig=/etc/braid.kubeconfig"}, wantErr: true},
		{name: "relative host conf dir", env: env, args: []string{"--host-cni-conf-dir=etc"}, wantErr: true},
		{name: "own name with a directory", env: env, args: []string{"--own-config-name=x/00-braid.conflist"}, wantErr: true},
		{name: "own name not a conflist", env: env, args: []string{"--own-config-name=00-braid.conf"}, wantErr: true},
		{name: "zero interval", env: env, args: []string{"--interval=0s"}, wantErr: true},
		{name: "unknown flag", env: env, args: []string{"--cni-bin=/x"}, wantErr: true},
		{name: "stray argument", env: env, args: []string{"extra"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			getenv := func(k string) string { return tt.env[k] }
			s, err := ParseFlags("braid-install", tt.args, getenv, io.Discard)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParseFlags = %+v, want an error", s)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseFlags: %v", err)
			}
			tt.check(t, s)
		})
	}
}

func TestParseFlagsHelp(t *testing.T) {
	_, err := ParseFlags("braid-install", []string{"-h"}, func(string) string { return "" }, io.Discard)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("ParseFlags(-h) = %v, want flag.ErrHelp", err)
	}
}
