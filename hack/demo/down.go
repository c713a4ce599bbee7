package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/braid-cni/braid/e2e/framework"
)

const (
	// teardownTimeout bounds the pod deletions; Stop bounds itself.
	teardownTimeout = 3 * time.Minute
	attachTimeout   = 15 * time.Second
)

// down stops the demo `demo up` left running and puts the host back. With
// no demo up it says so and succeeds.
func down(ctx context.Context, out io.Writer) error {
	st, err := loadState()
	if errors.Is(err, fs.ErrNotExist) {
		if _, err := os.Stat(stateDir); err == nil {
			fmt.Fprintf(out, "no demo is up, but %s is left from an interrupted start: removing it\n", stateDir)
			return os.RemoveAll(stateDir)
		}
		fmt.Fprintf(out, "no demo is up (no %s): nothing to do\n", statePath())
		return nil
	}
	if err != nil {
		return err
	}
	d := &demo{out: out, start: time.Now(), st: st, log: &warnLog{}}
	fmt.Fprintf(out, "stopping braid's demo in %s mode, up since %s\n", st.Mode, st.Started.Format(time.DateTime))
	if err := d.attach(ctx); err != nil {
		return fmt.Errorf("%w; nothing stopped, %s kept", err, statePath())
	}
	return d.teardown()
}

// attach finds the control plane and node that `demo up` left running.
func (d *demo) attach(ctx context.Context) error {
	if d.st.ControlPlane == nil {
		return nil // up stopped before anything ran
	}
	cp, err := framework.AttachControlPlane(*d.st.ControlPlane, d.log)
	if err != nil {
		return err
	}
	d.cp = cp
	if d.kube, _, err = cp.Clients(); err != nil {
		return err
	}
	if d.st.Node == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, attachTimeout)
	defer cancel()
	d.node, err = framework.AttachNode(ctx, cp, *d.st.Node, d.log)
	return err
}

// teardown deletes the example pods while braid is installed, stops the node
// and the control plane, checks that every address was released, and
// removes what the demo added to the host. It goes on past failures and
// returns them all.
func (d *demo) teardown() error {
	ctx, cancel := context.WithTimeout(context.Background(), teardownTimeout)
	defer cancel()
	var errs []error
	if d.node != nil && d.kube != nil {
		errs = append(errs, d.deleteExamplePods(ctx))
	}
	errs = append(errs, d.stopNode(), d.stopControlPlane(), d.checkReleased(), d.releaseHost())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("not everything was released (%s removed all the same):\n%w", stateDir, err)
	}
	fmt.Fprintf(d.out, "everything released in %v\n", since(d.start))
	return nil
}

// deleteExamplePods deletes each example pod and waits until the kubelet
// has torn its network down, braid's DEL included. If the API server is
// gone (after a reboot, say), there is nothing to ask: Stop cleans up.
func (d *demo) deleteExamplePods(ctx context.Context) error {
	zero := int64(0)
	for _, ref := range d.st.Pods {
		ns, name := splitRef(ref)
		getCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		pod, err := d.kube.CoreV1().Pods(ns).Get(getCtx, name, metav1.GetOptions{})
		cancel()
		switch {
		case apierrors.IsNotFound(err):
			d.step("pod %s: already deleted", ref)
			continue
		case err != nil:
			d.step("API server not reachable (%v): the pods go with the node", err)
			return nil
		}
		if err := d.kube.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
			return fmt.Errorf("delete pod %s: %w", ref, err)
		}
		if err := d.node.WaitPodNetworkGone(ctx, pod.UID, podTimeout); err != nil {
			return fmt.Errorf("delete pod %s: %w", ref, err)
		}
		d.step("deleted pod %s: the kubelet ran braid's DEL, its network namespace is gone", ref)
	}
	return nil
}

// stopNode stops the node (what pods are left, the kubelet, containerd and
// their containers) and puts back what it changed on the host.
func (d *demo) stopNode() error {
	if d.node == nil {
		return nil
	}
	st := d.node.State()
	d.node.Stop()
	if err := d.log.take(); err != nil {
		return fmt.Errorf("stop node: %w", err)
	}
	d.step("node stopped: %s", strings.Join(processList(st.Kubelet, st.Containerd), ", "))
	if st.Host == nil {
		return nil
	}
	d.step("host put back: %s", strings.Join(hostChanges(st.Host), "; "))
	return nil
}

// hostChanges describes what Stop put back.
func hostChanges(h *framework.HostState) []string {
	var out, removed []string
	if len(h.Saved) > 0 {
		dirs := slices.Sorted(maps.Keys(h.Saved))
		out = append(out, "restored "+strings.Join(dirs, ", ")+" as they were")
	}
	cgroups := 0
	for _, p := range h.Created {
		if strings.HasPrefix(p, "/sys/fs/cgroup/") {
			cgroups++
		} else {
			removed = append(removed, p)
		}
	}
	if len(removed) > 0 {
		out = append(out, "removed "+strings.Join(removed, ", ")+" (absent before)")
	}
	if cgroups > 0 {
		out = append(out, fmt.Sprintf("removed the kubepods cgroup in %d hierarchies", cgroups))
	}
	return append(out, "the kubelet's sysctls as before")
}

func (d *demo) stopControlPlane() error {
	if d.cp == nil {
		return nil
	}
	st := d.cp.State()
	d.cp.Stop()
	if err := d.log.take(); err != nil {
		return fmt.Errorf("stop control plane: %w", err)
	}
	d.step("control plane stopped: %s", strings.Join(processList(st.Scheduler, st.ControllerManager, st.APIServer, st.Etcd), ", "))
	return nil
}

func processList(procs ...*framework.ProcessState) []string {
	var out []string
	for _, p := range procs {
		if p != nil {
			out = append(out, fmt.Sprintf("%s (pid %d)", p.Name, p.PID))
		}
	}
	return out
}
