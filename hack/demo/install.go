package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/braid-cni/braid/e2e/framework"
)

const (
	cniBinDir     = "/opt/cni/bin"
	cniConfDir    = "/etc/cni/net.d"
	primaryFile   = "10-cluster.conflist"
	clusterCIDR   = "10.244.0.0/24"
	workloadImage = "braid.local/workload:e2e"
)

// primaryNetwork gives the node the network it has before braid, as a
// cluster network's installer would: the reference plugins in /opt/cni/bin
// and a bridge + host-local conflist in /etc/cni/net.d, at cniVersion 1.1.0
// so that containerd 2 runs STATUS on braid's conflist, which takes its
// version. Its leases live in the work directory.
func (d *demo) primaryNetwork(context.Context) error {
	plugins, err := filepath.Glob(filepath.Join(d.root, "bin", "plugins", "*"))
	if err != nil || len(plugins) == 0 {
		return fmt.Errorf("copy reference plugins: none in %s (run `make tools`)", filepath.Join(d.root, "bin", "plugins"))
	}
	for _, p := range plugins {
		if err := copyFile(p, filepath.Join(cniBinDir, filepath.Base(p)), 0o755); err != nil {
			return fmt.Errorf("copy plugin %s: %w", filepath.Base(p), err)
		}
		d.plugins = append(d.plugins, filepath.Base(p))
	}
	ipam := map[string]any{
		"type": "host-local", "dataDir": workPath("leases"),
		"ranges": []any{[]any{map[string]any{"subnet": clusterCIDR}}},
		"routes": []any{map[string]any{"dst": "0.0.0.0/0"}},
	}
	bridge := map[string]any{"type": "bridge", "bridge": clusterNet, "isGateway": true, "ipMasq": false, "ipam": ipam}
	conf, _ := json.MarshalIndent(map[string]any{"cniVersion": "1.1.0", "name": "cluster", "plugins": []any{bridge}}, "", "  ")
	path := filepath.Join(cniConfDir, primaryFile)
	if err := os.WriteFile(path, append(conf, '\n'), 0o644); err != nil {
		return fmt.Errorf("write primary network %s: %w", path, err)
	}
	d.step("primary network in %s: bridge %s, host-local %s; %d reference plugins in %s",
		path, clusterNet, clusterCIDR, len(plugins), cniBinDir)
	return nil
}

// loadImages packs the sandbox image, braid's image (braid's binaries from
// bin/, as the Dockerfile lays them out) and the workload image, and imports
// them into the node's containerd: there is no registry.
func (d *demo) loadImages(ctx context.Context) error {
	dir := workPath("images")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	pause, err := framework.BuildPauseImage(ctx, dir)
	if err != nil {
		return err
	}
	braid, err := framework.BuildBraidImage(dir, filepath.Join(d.root, "bin"))
	if err != nil {
		return err
	}
	workload := filepath.Join(dir, "workload")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", workload, "./e2e/testdata/workload")
	cmd.Dir, cmd.Env = d.root, append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build workload: go build: %w: %s", err, out)
	}
	wl, err := framework.BuildImage(dir, workloadImage, map[string]string{"/workload": workload}, []string{"/workload"})
	if err != nil {
		return err
	}
	for _, img := range []string{pause, braid, wl} {
		if err := d.node.ImportImage(ctx, img); err != nil {
			return err
		}
	}
	d.step("images imported: %s, %s, %s", framework.PauseImage, framework.BraidImage, workloadImage)
	return nil
}

// installBraid applies deployments/ for the demo's mode as an operator
// would (framework.InstallBraid: the one change is the API server's real
// address, as there is no kube-proxy) and waits until braid's config is
// written and the node's network is ready. Thick mode first makes / a
// shared mount, as systemd does, for braidd's netns mount.
func (d *demo) installBraid(ctx context.Context) error {
	mode := d.st.Mode
	if mode == framework.Thick {
		shared, err := framework.ShareRoot()
		if err != nil {
			return err
		}
		d.st.RootShared = shared
		if err := d.save(); err != nil {
			return err
		}
		if shared {
			d.step("made / a shared mount (braidd's /var/run/netns mount needs it); down makes it private again")
		}
	}
	err := framework.InstallBraid(ctx, d.cp, framework.InstallOptions{Mode: mode, Plugins: d.plugins})
	if err != nil {
		return err
	}
	if err := d.node.WaitReady(ctx); err != nil {
		return err
	}
	files := mode.Manifests()
	ready := framework.BraidConfig + " written"
	if mode == framework.Thick {
		ready = "braidd Ready (its caches synced), " + framework.BraidConfig + " forwards to it"
	}
	d.step("braid installed in %s mode from deployments/ (%s): %s, node Ready", mode, strings.Join(files, ", "), ready)
	return nil
}

func copyFile(src, dst string, mode os.FileMode) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, data, mode)
}
