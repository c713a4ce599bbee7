// Command demo shows braid attaching the example pods of examples/ on this
// machine: a real etcd and kube-apiserver on loopback, braid called through
// libcni as containerd calls it, the reference plugins doing the work. It
// needs root and the binaries of `make tools build`; `make demo` runs it.
// Whatever happens, it removes everything it created before it exits.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/containernetworking/cni/libcni"
	nadclientset "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/client/clientset/versioned"
	"github.com/vishvananda/netlink"
	"k8s.io/client-go/kubernetes"

	"github.com/braid-cni/braid/e2e/framework"
)

const (
	// deadline bounds the run but not the cleanup, which gets its own
	// context so that an interrupted or timed-out run is cleaned up too.
	deadline       = 2 * time.Minute
	cleanupTimeout = 45 * time.Second
)

// demo is one run: where it writes, the control plane, the runtime's view of
// braid and the steps that undo what the run did.
type demo struct {
	root, dir string // repository root; temporary directory of the run
	out       io.Writer
	cp        *framework.ControlPlane
	kube      kubernetes.Interface
	nads      nadclientset.Interface
	cni       *libcni.CNIConfig         // the runtime's libcni; finds braid in bin/
	list      *libcni.NetworkConfigList // the runtime's conflist holding braid
	undo      []undoStep
}

type undoStep struct {
	what string
	fn   func(context.Context) error
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, out io.Writer) (err error) {
	ctx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()
	root, err := framework.RepoRoot()
	if err != nil {
		return fmt.Errorf("%w (run the demo from the repository)", err)
	}
	if err := preflight(root); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "braid-demo-")
	if err != nil {
		return fmt.Errorf("create temporary directory: %w", err)
	}
	d := &demo{root: root, dir: dir, out: out}
	d.onCleanup("remove "+dir, func(context.Context) error { return os.RemoveAll(dir) })
	d.onCleanup("check that nothing is left", d.checkReleased)
	defer func() { err = errors.Join(err, d.cleanup()) }()
	start := time.Now()
	for _, step := range []func(context.Context) error{d.startControlPlane, d.layOutNode, d.applyExamples, d.attachPods} {
		if err := step(ctx); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "\nall example pods attached in %v; cleaning up\n", since(start))
	return nil
}

// preflight checks for root, for a veth left over by a killed run, and names
// every missing binary at once.
func preflight(root string) error {
	if os.Geteuid() != 0 {
		return errors.New("needs root (it creates network namespaces, bridges and a veth pair): run it as root, e.g. `sudo make demo`")
	}
	var errs []error
	for _, name := range []string{macvlanMaster, macvlanPeer} {
		if _, err := netlink.LinkByName(name); err == nil {
			errs = append(errs, fmt.Errorf("link %s exists, left over from a killed run: `ip link del %s`", name, macvlanMaster))
		}
	}
	for _, bin := range []string{"braid", "plugins/bridge", "plugins/host-local", "plugins/macvlan", "plugins/static", "plugins/tuning"} {
		if _, err := os.Stat(filepath.Join(root, "bin", bin)); err != nil {
			errs = append(errs, err)
		}
	}
	if _, err := exec.LookPath("ip"); err != nil {
		errs = append(errs, err)
	}
	if _, err := (framework.Options{}).Resolve(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("cannot start (binaries come from `make tools build`):\n%w", err)
	}
	return nil
}

// onCleanup registers a step; cleanup runs them in reverse order.
func (d *demo) onCleanup(what string, fn func(context.Context) error) {
	d.undo = append(d.undo, undoStep{what: what, fn: fn})
}

// cleanup runs every step even when one fails, and reports them all.
func (d *demo) cleanup() error {
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	var errs []error
	for i := len(d.undo) - 1; i >= 0; i-- {
		if err := d.undo[i].fn(ctx); err != nil {
			errs = append(errs, fmt.Errorf("cleanup: %s: %w", d.undo[i].what, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	fmt.Fprintf(d.out, "cleanup: everything released: braid DEL for every pod, netns, bridges and veth deleted, no host-local "+
		"lease or braid journal entry left, pods and NADs deleted, control plane stopped, %s removed\n", d.dir)
	return nil
}

func since(t time.Time) time.Duration {
	return time.Since(t).Round(time.Millisecond)
}
