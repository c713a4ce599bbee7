package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	corev1 "k8s.io/api/core/v1"

	"github.com/braid-cni/braid/e2e/framework"
)

// The modes. thin@base and thick@base are thin and thick with -baseline's
// binaries.
const (
	modeFloor     = "floor"
	modeNoop      = "noop"
	modeThin      = "thin"
	modeThinBase  = "thin@base"
	modeThick     = "thick"
	modeThickBase = "thick@base"
	modeParallel  = "thick+parallel"
)

// modes are the modes measured, in the order they take their turns and are
// printed; with a baseline its thin and thick each follow their own
// binaries' mode, Multus thin, when found, follows thin and Multus thick
// comes last.
func (e *env) modes() []string {
	m := []string{modeFloor, modeNoop, modeThin}
	if e.baseRev != "" {
		m = append(m, modeThinBase)
	}
	if e.multusDir != "" {
		m = append(m, modeMultus)
	}
	m = append(m, modeThick)
	if e.baseRev != "" {
		m = append(m, modeThickBase)
	}
	m = append(m, modeParallel)
	if e.multusThick {
		m = append(m, modeMultusThick)
	}
	return m
}

// thickModes maps each thick mode measured to its braidd's parallelAttach.
func (e *env) thickModes() map[string]bool {
	m := map[string]bool{modeThick: false, modeParallel: true}
	if e.baseRev != "" {
		m[modeThickBase] = false
	}
	return m
}

// binariesOf returns the programs a mode runs: the baseline's in the @base
// modes, Multus's directory (no braidd) in the Multus modes.
func (e *env) binariesOf(mode string) binaries {
	switch mode {
	case modeThinBase, modeThickBase:
		return e.base
	case modeMultus, modeMultusThick:
		return binaries{dir: e.multusDir}
	}
	return e.bin
}

// attacher runs one sandbox's ADD or DEL the way a runtime does.
type attacher interface {
	add(ctx context.Context, netns, containerID string) error
	del(ctx context.Context, netns, containerID string) error
}

// floor invokes the delegates themselves: the cluster network on eth0, then
// secondary network i on net<i>; DEL in reverse.
type floor struct {
	cni   *libcni.CNIConfig
	pod   *corev1.Pod
	lists []*libcni.NetworkConfigList
}

func (f *floor) rt(netns, containerID string, i int) *libcni.RuntimeConf {
	rt := framework.SandboxConf(f.pod, containerID, netns)
	if i > 0 {
		rt.IfName = fmt.Sprintf("net%d", i)
	}
	return rt
}

func (f *floor) add(ctx context.Context, netns, containerID string) error {
	for i, l := range f.lists {
		if _, err := f.cni.AddNetworkList(ctx, l, f.rt(netns, containerID, i)); err != nil {
			return fmt.Errorf("ADD %s: %w", l.Name, err)
		}
	}
	return nil
}

func (f *floor) del(ctx context.Context, netns, containerID string) error {
	for i := len(f.lists) - 1; i >= 0; i-- {
		if err := f.cni.DelNetworkList(ctx, f.lists[i], f.rt(netns, containerID, i)); err != nil {
			return fmt.Errorf("DEL %s: %w", f.lists[i].Name, err)
		}
	}
	return nil
}

// braid is the braid plugin (thin), the shim (thick) or the do-nothing
// meta-plugin (noop) as the node's only network, as the runtime sees it.
type braid struct {
	cni  *libcni.CNIConfig
	pod  *corev1.Pod
	list *libcni.NetworkConfigList
}

func (b *braid) add(ctx context.Context, netns, containerID string) error {
	_, err := b.cni.AddNetworkList(ctx, b.list, framework.SandboxConf(b.pod, containerID, netns))
	return err
}

func (b *braid) del(ctx context.Context, netns, containerID string) error {
	return b.cni.DelNetworkList(ctx, b.list, framework.SandboxConf(b.pod, containerID, netns))
}

// noopType is the do-nothing meta-plugin's binary (hack/bench/noop), next
// to braid's.
const noopType = "braid-noop"

// newNoop is the do-nothing meta-plugin as the node's only network, as braid
// is in thin mode, given the delegates braid would run: the cluster
// conflist and the first n NADs' configs.
func (e *env) newNoop(pod *corev1.Pod, n int) (attacher, error) {
	cluster, err := os.ReadFile(e.clusterConf)
	if err != nil {
		return nil, err
	}
	delegates := []json.RawMessage{cluster}
	for _, data := range e.nadConfs[:n] {
		delegates = append(delegates, data)
	}
	conf := map[string]any{
		"cniVersion": cniVersion, "name": "braid-net", "type": noopType, "binDir": e.pluginsDir,
		"cacheDir": filepath.Join(e.work, modeNoop, "delegate-cache"), "delegates": delegates,
	}
	return e.meta(modeNoop, pod, conf)
}

// newFloor loads the cluster conflist and the first n NADs' configs.
func (e *env) newFloor(pod *corev1.Pod, n int) (attacher, error) {
	cluster, err := libcni.ConfListFromFile(e.clusterConf)
	if err != nil {
		return nil, err
	}
	f := &floor{cni: e.cniConfig(modeFloor, e.pluginsDir), pod: pod, lists: []*libcni.NetworkConfigList{cluster}}
	for _, data := range e.nadConfs[:n] {
		conf, err := libcni.NetworkPluginConfFromBytes(data)
		if err != nil {
			return nil, err
		}
		list, err := libcni.ConfListFromConf(conf)
		if err != nil {
			return nil, err
		}
		f.lists = append(f.lists, list)
	}
	return f, nil
}

// braidSettings are braid's settings in one mode: the thin plugin's config
// has them, and in thick mode braidd's own config (its only source).
func (e *env) braidSettings(mode string) map[string]any {
	dir := filepath.Join(e.work, mode)
	return map[string]any{
		"confDir": filepath.Join(dir, "net.d"), "cniDir": filepath.Join(dir, "braid"),
		"binDir": e.pluginsDir, "clusterNetwork": e.clusterConf,
	}
}

// newBraid is braid's config list for one mode; socketDir is empty in thin
// mode (braid) and names the daemon's socket directory in thick mode
// (braid-shim).
func (e *env) newBraid(mode string, pod *corev1.Pod, socketDir string) (attacher, error) {
	dir := filepath.Join(e.work, mode)
	if err := os.MkdirAll(filepath.Join(dir, "net.d"), 0o755); err != nil {
		return nil, err
	}
	conf := e.braidSettings(mode)
	conf["cniVersion"], conf["name"], conf["type"] = cniVersion, "braid-net", "braid"
	conf["kubeconfig"], conf["logFile"] = e.kubeconfig, filepath.Join(dir, "braid.log")
	conf["logLevel"], conf["logToStderr"] = "info", false
	if socketDir != "" {
		// As braidd's autoconfig writes it: the shim, forwarding (braidd's
		// own config carries the same settings).
		conf["type"], conf["daemonSocketDir"] = "braid-shim", socketDir
	}
	return e.meta(mode, pod, conf)
}

// meta is the meta-plugin that conf configures as the node's only network,
// in a conflist of its own, found among mode's binaries.
func (e *env) meta(mode string, pod *corev1.Pod, conf map[string]any) (attacher, error) {
	data, err := json.Marshal(map[string]any{"cniVersion": cniVersion, "name": "braid-net", "plugins": []any{conf}})
	if err != nil {
		return nil, err
	}
	list, err := libcni.NetworkConfFromBytes(data)
	if err != nil {
		return nil, fmt.Errorf("%s config: %w", mode, err)
	}
	return &braid{cni: e.cniConfig(mode, e.binariesOf(mode).dir), pod: pod, list: list}, nil
}

// cniConfig is a libcni client with the runtime's own cache per mode.
func (e *env) cniConfig(mode, binDir string) *libcni.CNIConfig {
	var exec invoke.Exec // libcni's default: plugins' stderr is the bench's
	if mode == modeMultus || mode == modeMultusThick {
		// Multus's event recorder logs every event through klog to
		// stderr; its errors come back on stdout, as every plugin's.
		exec = &invoke.DefaultExec{RawExec: &invoke.RawExec{Stderr: io.Discard}}
	}
	return libcni.NewCNIConfigWithCacheDir([]string{binDir}, filepath.Join(e.work, mode, "runtime-cache"), exec)
}
