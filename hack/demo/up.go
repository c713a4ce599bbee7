package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"k8s.io/client-go/kubernetes"

	"github.com/braid-cni/braid/e2e/framework"
)

// upTimeout bounds `demo up`; with a warm cache it takes well under a
// minute, the first run also compiles the workload image's program.
const upTimeout = 4 * time.Minute

// demo is one `demo up` or `demo down`: the cluster it runs or attached to
// and the state that describes it.
type demo struct {
	root  string // repository root; empty for down
	out   io.Writer
	start time.Time
	st    *demoState
	log   *warnLog // the framework's warnings
	cp    *framework.ControlPlane
	node  *framework.Node
	kube  kubernetes.Interface
	pods  []shownPod // filled by showPods
	// plugins are the reference plugins primaryNetwork put in /opt/cni/bin.
	plugins []string
}

// up brings the cluster up, step by step. A failed step tears down what
// the earlier ones started.
func up(sigCtx context.Context, out io.Writer, mode framework.Mode) (err error) {
	ctx, cancel := context.WithTimeout(sigCtx, upTimeout)
	defer cancel()
	root, err := framework.RepoRoot()
	if err != nil {
		return fmt.Errorf("%w (run the demo from the repository)", err)
	}
	if err := preflight(root); err != nil {
		return err
	}
	d := &demo{root: root, out: out, start: time.Now(), st: &demoState{Started: time.Now(), Mode: mode}, log: &warnLog{}}
	if err := d.recordHost(); err != nil {
		return errors.Join(err, os.RemoveAll(stateDir))
	}
	defer func() {
		if err == nil {
			return
		}
		if sigCtx.Err() != nil {
			err = errors.New("interrupted") // the step's error only says its wait was cancelled
		}
		fmt.Fprintf(out, "\ndemo up failed (%s); tearing down what it started:\n", firstLine(err))
		err = errors.Join(err, d.teardown())
	}()
	fmt.Fprintf(out, "braid's demo in %s mode (%s)\n", mode, modeNote(mode))
	steps := []func(context.Context) error{
		d.startCluster, d.primaryNetwork, d.loadImages, d.installBraid, d.addVeth, d.applyExamples, d.showPods,
	}
	for _, step := range steps {
		if err := step(ctx); err != nil {
			return err
		}
	}
	d.instructions(ctx)
	return nil
}

// preflight refuses to start over a running demo, a running e2e node or
// links of an earlier one, and names every missing binary at once.
func preflight(root string) error {
	if _, err := os.Stat(stateDir); err == nil {
		return fmt.Errorf("a demo is already up (its state is in %s): `make demo-down` stops it first "+
			"(and cleans up after one that a reboot killed)", stateDir)
	}
	if err := hostLockFree(); err != nil {
		return err
	}
	var errs []error
	for _, name := range append(demoLinks(), macvlanPeer) {
		if _, err := netlink.LinkByName(name); err == nil {
			errs = append(errs, fmt.Errorf("link %s exists, left over from an earlier run: `ip link del %s`", name, name))
		}
	}
	for _, bin := range []string{"braid", "braid-shim", "braid-install", "braidd", "braid-webhook", "plugins/bridge", "plugins/host-local", "plugins/macvlan",
		"plugins/static", "plugins/tuning", "plugins/loopback"} {
		if _, err := os.Stat(filepath.Join(root, "bin", bin)); err != nil {
			errs = append(errs, err)
		}
	}
	if _, err := exec.LookPath("go"); err != nil {
		errs = append(errs, err)
	}
	_, cpErr := framework.Options{Controllers: true}.Resolve()
	_, nodeErr := framework.NodeOptions{}.Resolve()
	if err := errors.Join(append(errs, cpErr, nodeErr)...); err != nil {
		return fmt.Errorf("cannot start (binaries come from `make tools build`):\n%w", err)
	}
	return nil
}

// hostLockFree fails while another node (an e2e run) holds the host: the
// demo's node would wait for it.
func hostLockFree() error {
	path := framework.HostLockPath()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("open host lock %s: %w", path, err)
	}
	defer f.Close() // unlocks
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return fmt.Errorf("another node runs on this host, an e2e run perhaps (lock %s: %w): wait for it to finish", path, err)
	}
	return nil
}

// modeNote says what the mode runs on the node, and how to get the other.
func modeNote(mode framework.Mode) string {
	if mode == framework.Thick {
		return "braidd, the node daemon, serves braid-shim; `make demo MODE=thin` runs the braid plugin alone"
	}
	return "the braid plugin alone, no daemon and no hot-plug; `make demo` runs thick mode, the default"
}

// firstLine is the first line of an error, whose rest may be a log tail.
func firstLine(err error) string {
	line, _, _ := strings.Cut(err.Error(), "\n")
	return line
}

// step reports progress with the time since the start.
func (d *demo) step(format string, args ...any) {
	fmt.Fprintf(d.out, "[%5.1fs] %s\n", time.Since(d.start).Seconds(), fmt.Sprintf(format, args...))
}

// startCluster starts the control plane with controllers, then the node,
// both detached, and records each in the state as soon as it runs.
func (d *demo) startCluster(ctx context.Context) error {
	cp, err := framework.StartControlPlane(ctx, framework.Options{
		WorkDir: workPath("control-plane"), Controllers: true, Detach: true, Log: d.log,
	})
	if err != nil {
		return err
	}
	d.cp = cp
	if err := d.save(); err != nil {
		return err
	}
	if d.kube, _, err = cp.Clients(); err != nil {
		return err
	}
	if err := cp.WriteKubeconfig(kubeconfigPath(), true); err != nil {
		return err
	}
	d.step("control plane up at %s: etcd, kube-apiserver, kube-controller-manager, kube-scheduler", cp.AdminConfig().Host)
	node, err := framework.StartNode(ctx, cp, framework.NodeOptions{
		WorkDir: workPath("node"), ReadyWithoutNetwork: true, Detach: true, Log: d.log,
	})
	if err != nil {
		return err
	}
	d.node = node
	if err := d.save(); err != nil {
		return err
	}
	d.step("node %s registered: containerd and kubelet, no pod network yet", framework.NodeName)
	return nil
}
