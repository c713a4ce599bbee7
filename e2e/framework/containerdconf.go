package framework

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// shimName is the runc shim containerd starts for each pod; the node runs
// the one next to its containerd binary.
const shimName = "containerd-shim-runc-v2"

// containerdMajor returns the major version of the containerd binary at
// path, read from its --version line ("containerd
// github.com/containerd/containerd/v2 v2.4.2 <revision>", Debian's
// "containerd github.com/containerd/containerd 1.6.20~ds1 <revision>").
func containerdMajor(ctx context.Context, path string) (int, error) {
	out, err := exec.CommandContext(ctx, path, "--version").Output()
	if err != nil {
		return 0, fmt.Errorf("containerd version of %s: %w", path, err)
	}
	fields := strings.Fields(string(out))
	if len(fields) < 3 {
		return 0, fmt.Errorf("containerd version of %s: unexpected output %q", path, bytes.TrimSpace(out))
	}
	major, _, _ := strings.Cut(strings.TrimPrefix(fields[2], "v"), ".")
	n, err := strconv.Atoi(major)
	if err != nil {
		return 0, fmt.Errorf("containerd version of %s: version %q: %w", path, fields[2], err)
	}
	return n, nil
}

// containerdConfig is the config for the node's containerd: version 4 for
// containerd 2 (containerdConfigV4), version 2 for containerd 1.
func (n *Node) containerdConfig() string {
	if n.containerdMajor >= 2 {
		return n.containerdConfigV4()
	}
	return n.containerdConfigV2()
}

// containerdConfigV4 is containerd 2's config, version 4 (containerd 2.4's
// own; containerd 2.4 would migrate version 3 on every start, with a
// warning): everything containerd owns lives under the node's work dir,
// the ttrpc socket too (in version 4 it no longer follows the gRPC one) and
// the opt plugin's directory (else /opt/containerd); only the CNI
// directories are the host's, because the plugin under test is installed
// there. The runc shim is named by its path, as Debian's containerd 1.6
// has one of its own on PATH. NRI is off: it would listen on
// /var/run/nri/nri.sock on the host. restrict_oom_score_adj is needed
// because root here lacks CAP_SYS_RESOURCE and may not lower a score. The
// CNI config is read as containerd 2 does: at cniVersion 1.1.0 it runs
// STATUS every few seconds and reports the node's network not ready while
// STATUS fails.
func (n *Node) containerdConfigV4() string {
	q := strconv.Quote
	runtime := `plugins."io.containerd.cri.v1.runtime"`
	images := `plugins."io.containerd.cri.v1.images"`
	lines := []string{
		`version = 4`,
		`root = ` + q(filepath.Join(n.containerdDir, "root")),
		`state = ` + q(filepath.Join(n.containerdDir, "state")),
		`disabled_plugins = ["io.containerd.snapshotter.v1.blockfile", "io.containerd.snapshotter.v1.btrfs",` +
			` "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.erofs",` +
			` "io.containerd.snapshotter.v1.zfs", "io.containerd.nri.v1.nri"]`,
		`[plugins."io.containerd.server.v1.grpc"]`,
		`  address = ` + q(n.socket),
		`[plugins."io.containerd.server.v1.ttrpc"]`,
		`  address = ` + q(n.socket+".ttrpc"),
		`[plugins."io.containerd.internal.v1.opt"]`,
		`  path = ` + q(filepath.Join(n.containerdDir, "opt")),
		`[` + images + `]`,
		`  snapshotter = ` + q(n.snapshotter),
		`[` + images + `.pinned_images]`,
		`  sandbox = ` + q(n.opts.SandboxImage),
		`[` + runtime + `]`,
		`  restrict_oom_score_adj = true`,
		`[` + runtime + `.containerd]`,
		`  default_runtime_name = "runc"`,
		`[` + runtime + `.containerd.runtimes.runc]`,
		`  runtime_type = "io.containerd.runc.v2"`,
		`  runtime_path = ` + q(filepath.Join(filepath.Dir(n.opts.ContainerdPath), shimName)),
		`[` + runtime + `.containerd.runtimes.runc.options]`,
		`  SystemdCgroup = false`,
		`  Root = ` + q(filepath.Join(n.containerdDir, "runc")),
		`[` + runtime + `.cni]`,
		`  bin_dirs = [` + q(cniBinDir) + `]`,
		`  conf_dir = ` + q(cniConfDir),
		`  max_conf_num = 1`,
	}
	return strings.Join(lines, "\n") + "\n"
}

// containerdConfigV2 is containerd 1.6's config, version 2, with what
// containerdConfigV4 says but for the shim (Debian's containerd 1.6 finds
// its own on PATH), NRI (1.6 has it off) and STATUS (1.6 never runs it).
func (n *Node) containerdConfigV2() string {
	q := strconv.Quote
	cri := `plugins."io.containerd.grpc.v1.cri"`
	lines := []string{
		`version = 2`,
		`root = ` + q(filepath.Join(n.containerdDir, "root")),
		`state = ` + q(filepath.Join(n.containerdDir, "state")),
		`disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",` +
			` "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs"]`,
		`[grpc]`,
		`  address = ` + q(n.socket),
		`[plugins."io.containerd.internal.v1.opt"]`,
		`  path = ` + q(filepath.Join(n.containerdDir, "opt")),
		`[` + cri + `]`,
		`  sandbox_image = ` + q(n.opts.SandboxImage),
		`  restrict_oom_score_adj = true`,
		`[` + cri + `.containerd]`,
		`  snapshotter = ` + q(n.snapshotter),
		`  default_runtime_name = "runc"`,
		`[` + cri + `.containerd.runtimes.runc]`,
		`  runtime_type = "io.containerd.runc.v2"`,
		`[` + cri + `.containerd.runtimes.runc.options]`,
		`  SystemdCgroup = false`,
		`  Root = ` + q(filepath.Join(n.containerdDir, "runc")),
		`[` + cri + `.cni]`,
		`  bin_dir = ` + q(cniBinDir),
		`  conf_dir = ` + q(cniConfDir),
		`  max_conf_num = 1`,
	}
	return strings.Join(lines, "\n") + "\n"
}
