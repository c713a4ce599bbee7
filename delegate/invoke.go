package delegate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/braid-cni/braid/atomicfile"
	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"

	"github.com/braid-cni/braid/caller"
)

// Runtime is what a delegate gets besides its config: the CNI_* variables
// and the capability args (libcni passes each plugin only the ones it declares).
type Runtime struct {
	ContainerID    string
	NetNS          string
	IfName         string
	Args           [][2]string
	CapabilityArgs map[string]any
}

func (rt Runtime) conf() *libcni.RuntimeConf {
	return &libcni.RuntimeConf{
		ContainerID:    rt.ContainerID,
		NetNS:          rt.NetNS,
		IfName:         rt.IfName,
		Args:           rt.Args,
		CapabilityArgs: rt.CapabilityArgs,
	}
}

// Invoker runs delegates through libcni.
type Invoker struct {
	binDirs  []string
	cacheDir string
	exec     invoke.Exec
}

// NewInvoker finds plugins in binDirs and caches results under
// cacheDir/results. A nil exec runs real plugin binaries.
func NewInvoker(binDirs []string, cacheDir string, exec invoke.Exec) *Invoker {
	if exec == nil {
		exec = &invoke.DefaultExec{RawExec: &invoke.RawExec{Stderr: os.Stderr}}
	}
	return &Invoker{binDirs: binDirs, cacheDir: cacheDir, exec: exec}
}

// cni returns a libcni client whose exec remembers the last plugin that failed,
// so errors can name the plugin of a chain that broke.
func (i *Invoker) cni() (*libcni.CNIConfig, *failedPlugin) {
	fp := &failedPlugin{Exec: i.exec}
	return libcni.NewCNIConfigWithCacheDir(i.binDirs, i.cacheDir, fp), fp
}

// Add runs ADD and caches the result.
func (i *Invoker) Add(ctx context.Context, d *Delegate, rt Runtime) (types.Result, error) {
	c, fp := i.cni()
	res, err := c.AddNetworkList(ctx, d.list, rt.conf())
	if err != nil {
		return nil, fp.explain(d, err)
	}
	return res, nil
}

// Del runs DEL with the cached result as prevResult, in reverse chain order.
func (i *Invoker) Del(ctx context.Context, d *Delegate, rt Runtime) error {
	c, fp := i.cni()
	if err := c.DelNetworkList(ctx, d.list, rt.conf()); err != nil {
		return fp.explain(d, err)
	}
	return nil
}

// Check runs CHECK against the cached result. Configs older than 0.4.0 have
// no CHECK and pass.
func (i *Invoker) Check(ctx context.Context, d *Delegate, rt Runtime) error {
	c, fp := i.cni()
	err := c.CheckNetworkList(ctx, d.list, rt.conf())
	if errors.Is(err, libcni.ErrorCheckNotSupp) {
		return nil
	}
	if err != nil {
		return fp.explain(d, err)
	}
	return nil
}

// Status runs STATUS; configs older than 1.1.0 are ready by definition.
func (i *Invoker) Status(ctx context.Context, d *Delegate) error {
	c, fp := i.cni()
	if err := c.GetStatusNetworkList(ctx, d.list); err != nil {
		return fp.explain(d, err)
	}
	return nil
}

// GC deletes cached attachments of d that are not in valid and, for 1.1.0
// configs, sends GC to every plugin of the chain.
func (i *Invoker) GC(ctx context.Context, d *Delegate, valid []types.GCAttachment) error {
	c, fp := i.cni()
	if err := c.GCNetworkList(ctx, d.list, &libcni.GCArgs{ValidAttachments: valid}); err != nil {
		return fp.explain(d, err)
	}
	return nil
}

// SetCachedResult replaces the result in libcni's cache entry for this
// attachment, so that DEL and CHECK see what braid changed after ADD (the
// default route). A missing entry is left alone. The entry is replaced
// atomically, so libcni never reads half of it, even across a crash.
func (i *Invoker) SetCachedResult(d *Delegate, rt Runtime, res types.Result) error {
	path := filepath.Join(i.cacheDir, "results", fmt.Sprintf("%s-%s-%s", d.Name(), rt.ContainerID, rt.IfName))
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read cached result %s: %w", path, err)
	}
	var entry map[string]json.RawMessage
	if err := json.Unmarshal(data, &entry); err != nil {
		return fmt.Errorf("decode cached result %s: %w", path, err)
	}
	raw, err := json.Marshal(res)
	if err != nil {
		return fmt.Errorf("encode result for %s: %w", path, err)
	}
	entry["result"] = raw
	out, err := json.Marshal(entry)
	if err != nil {
		return fmt.Errorf("encode cached result %s: %w", path, err)
	}
	if err := atomicfile.Write(path, out, 0o600); err != nil {
		return fmt.Errorf("replace cached result %s: %w", path, err)
	}
	return nil
}

// failedPlugin is an invoke.Exec that remembers which plugin failed last.
type failedPlugin struct {
	invoke.Exec
	mu       sync.Mutex
	path     string
	notFound bool
}

// ExecPlugin runs the plugin with braid's mark in its environment (package
// caller): a braid started by it, or by a plugin it starts, refuses to run.
func (f *failedPlugin) ExecPlugin(ctx context.Context, pluginPath string, stdin []byte, environ []string) ([]byte, error) {
	out, err := f.Exec.ExecPlugin(ctx, pluginPath, stdin, caller.Mark(environ, envValue(environ, "CNI_CONTAINERID")))
	if err != nil {
		f.mu.Lock()
		f.path = pluginPath
		f.mu.Unlock()
	}
	return out, err
}

// envValue returns the value of key in environ, or "".
func envValue(environ []string, key string) string {
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v
		}
	}
	return ""
}

// FindInPath reports a plugin that is not installed as an invalid config
// (code 7), naming the plugin and the directories searched.
func (f *failedPlugin) FindInPath(plugin string, paths []string) (string, error) {
	path, err := f.Exec.FindInPath(plugin, paths)
	if err != nil {
		f.mu.Lock()
		f.path, f.notFound = plugin, true
		f.mu.Unlock()
		return "", types.NewError(types.ErrInvalidNetworkConfig, fmt.Sprintf("plugin %q not found in %s", plugin, strings.Join(paths, ":")), err.Error())
	}
	return path, nil
}

// explain names the plugin that failed; the error chain is kept.
func (f *failedPlugin) explain(d *Delegate, err error) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	plugin := filepath.Base(f.path)
	if f.path == "" {
		plugin = d.Types()[0]
	}
	return &Error{Plugin: plugin, NotInstalled: f.notFound, Err: err}
}
