package delegate_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/types/create"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/braid-cni/braid/caller"
	"github.com/braid-cni/braid/delegate"
)

// Canned ADD results in 1.0.0 form. The fake converts them to the config's
// version, as a real plugin answers in the version it was asked for.
const (
	bridgeResult = `{"cniVersion":"1.0.0",
		"interfaces":[{"name":"net1","sandbox":"/var/run/netns/cni-1"}],
		"ips":[{"address":"10.1.1.5/24","gateway":"10.1.1.1","interface":0}]}`
	tuningResult = `{"cniVersion":"1.0.0",
		"interfaces":[{"name":"net1","mac":"02:00:00:00:00:01","sandbox":"/var/run/netns/cni-1"}],
		"ips":[{"address":"10.1.1.5/24","gateway":"10.1.1.1","interface":0}],
		"dns":{"nameservers":["10.1.1.53"]}}`
)

var binDirs = []string{"/opt/cni/bin", "/usr/libexec/cni"}

// call is one plugin execution as the fake saw it.
type call struct {
	command string
	plugin  string
	env     map[string]string
	stdin   map[string]any
}

func (c call) String() string { return c.command + " " + c.plugin }

// fakeExec is an invoke.Exec that runs no binaries. Plugins live at
// "/fake/<type>"; ADD answers with results[type], other verbs with nothing.
type fakeExec struct {
	results map[string]string // plugin type -> ADD result (1.0.0 JSON)
	fail    map[string]error  // "type COMMAND" -> error to return
	missing map[string]bool   // plugin types FindInPath does not find

	mu    sync.Mutex
	calls []call
}

var _ invoke.Exec = (*fakeExec)(nil)

func (f *fakeExec) ExecPlugin(_ context.Context, pluginPath string, stdin []byte, environ []string) ([]byte, error) {
	env := map[string]string{}
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	var conf map[string]any
	if err := json.Unmarshal(stdin, &conf); err != nil {
		return nil, fmt.Errorf("fake: stdin is not JSON: %w", err)
	}
	c := call{command: env["CNI_COMMAND"], plugin: strings.TrimPrefix(pluginPath, "/fake/"), env: env, stdin: conf}
	f.mu.Lock()
	f.calls = append(f.calls, c)
	f.mu.Unlock()
	if err := f.fail[c.plugin+" "+c.command]; err != nil {
		return nil, err
	}
	if c.command != "ADD" {
		return nil, nil
	}
	canned, ok := f.results[c.plugin]
	if !ok {
		return nil, fmt.Errorf("fake: no result for %s", c.plugin)
	}
	res, err := create.CreateFromBytes([]byte(canned))
	if err != nil {
		return nil, err
	}
	ver, _ := conf["cniVersion"].(string)
	if res, err = res.GetAsVersion(ver); err != nil {
		return nil, err
	}
	return json.Marshal(res)
}

func (f *fakeExec) FindInPath(plugin string, paths []string) (string, error) {
	if f.missing[plugin] {
		return "", fmt.Errorf("failed to find plugin %q in path %s", plugin, paths)
	}
	return "/fake/" + plugin, nil
}

func (f *fakeExec) Decode(data []byte) (version.PluginInfo, error) {
	return version.PluginSupports("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"), nil
}

// took returns the calls so far and forgets them.
func (f *fakeExec) took() []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.calls
	f.calls = nil
	return out
}

func newFake() *fakeExec {
	return &fakeExec{
		results: map[string]string{"bridge": bridgeResult, "tuning": tuningResult},
		fail:    map[string]error{},
		missing: map[string]bool{},
	}
}

// chain returns a conflist of bridge then tuning for version v. Only bridge
// declares capabilities.
func chain(t *testing.T, v string) *delegate.Delegate {
	t.Helper()
	d, err := delegate.Load([]byte(fmt.Sprintf(`{"cniVersion":%q,"name":"green","plugins":[
		{"type":"bridge","bridge":"br0","capabilities":{"mac":true}},
		{"type":"tuning","mtu":1400}]}`, v)))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return d
}

func runtimeFor(containerID string) delegate.Runtime {
	return delegate.Runtime{
		ContainerID: containerID,
		NetNS:       "/var/run/netns/cni-1",
		IfName:      "net1",
		Args:        [][2]string{{"K8S_POD_NAMESPACE", "ns"}, {"K8S_POD_NAME", "p"}},
		CapabilityArgs: map[string]any{
			"mac": "02:00:00:00:00:01",
			"ips": []string{"10.1.1.5/24"},
		},
	}
}

// canon turns any result JSON into 1.0.0 JSON so results of different
// versions, and the same result encoded twice, compare equal.
func canon(t *testing.T, data []byte) string {
	t.Helper()
	res, err := create.CreateFromBytes(data)
	if err != nil {
		t.Fatalf("not a CNI result: %v: %s", err, data)
	}
	res, err = res.GetAsVersion("1.0.0")
	if err != nil {
		t.Fatalf("convert result: %v", err)
	}
	out, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// prevResult returns the canonical prevResult of a call, "" when it has none.
func prevResult(t *testing.T, c call) string {
	t.Helper()
	prev, ok := c.stdin["prevResult"]
	if !ok {
		return ""
	}
	data, err := json.Marshal(prev)
	if err != nil {
		t.Fatal(err)
	}
	return canon(t, data)
}

func cachePath(cacheDir, network, containerID, ifName string) string {
	return filepath.Join(cacheDir, "results", network+"-"+containerID+"-"+ifName)
}

// cacheEntry is the part of libcni's cache file the tests read back.
type cacheEntry struct {
	Kind        string          `json:"kind"`
	ContainerID string          `json:"containerId"`
	Config      []byte          `json:"config"`
	IfName      string          `json:"ifName"`
	NetworkName string          `json:"networkName"`
	NetNS       string          `json:"netns"`
	CNIArgs     [][2]string     `json:"cniArgs"`
	Result      json.RawMessage `json:"result"`
}

func readCache(t *testing.T, path string) cacheEntry {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read cache: %v", err)
	}
	var e cacheEntry
	if err := json.Unmarshal(data, &e); err != nil {
		t.Fatalf("decode cache %s: %v", data, err)
	}
	return e
}

func commands(calls []call) []string {
	out := make([]string, 0, len(calls))
	for _, c := range calls {
		out = append(out, c.String())
	}
	return out
}

// TestInvokerLifecycle runs ADD, CHECK, STATUS and DEL on a two-plugin
// chain at every supported spec version.
func TestInvokerLifecycle(t *testing.T) {
	for _, v := range []string{"0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"} {
		t.Run(v, func(t *testing.T) {
			ctx := context.Background()
			cacheDir := t.TempDir()
			fx := newFake()
			inv := delegate.NewInvoker(binDirs, cacheDir, fx)
			d := chain(t, v)
			rt := runtimeFor("c1")
			atLeast := func(min string) bool {
				ok, err := version.GreaterThanOrEqualTo(v, min)
				if err != nil {
					t.Fatal(err)
				}
				return ok
			}

			// ADD: in order, prevResult chained, capability args only
			// where declared, result cached.
			res, err := inv.Add(ctx, d, rt)
			if err != nil {
				t.Fatalf("Add: %v", err)
			}
			calls := fx.took()
			if got, want := commands(calls), []string{"ADD bridge", "ADD tuning"}; !reflect.DeepEqual(got, want) {
				t.Fatalf("ADD calls %q, want %q", got, want)
			}
			for _, c := range calls {
				for k, want := range map[string]string{
					"CNI_CONTAINERID": "c1",
					"CNI_NETNS":       "/var/run/netns/cni-1",
					"CNI_IFNAME":      "net1",
					"CNI_ARGS":        "K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p",
					"CNI_PATH":        strings.Join(binDirs, string(os.PathListSeparator)),
				} {
					if c.env[k] != want {
						t.Errorf("%s: %s=%q, want %q", c, k, c.env[k], want)
					}
				}
				if c.stdin["name"] != "green" || c.stdin["cniVersion"] != v {
					t.Errorf("%s: name %v cniVersion %v, want green %s", c, c.stdin["name"], c.stdin["cniVersion"], v)
				}
			}
			if got := prevResult(t, calls[0]); got != "" {
				t.Errorf("first plugin got prevResult %s", got)
			}
			if got, want := prevResult(t, calls[1]), canon(t, []byte(bridgeResult)); got != want {
				t.Errorf("second plugin prevResult\n got %s\nwant %s", got, want)
			}
			if got, want := calls[0].stdin["runtimeConfig"], map[string]any{"mac": "02:00:00:00:00:01"}; !reflect.DeepEqual(got, want) {
				t.Errorf("bridge runtimeConfig %v, want %v", got, want)
			}
			if rc, ok := calls[1].stdin["runtimeConfig"]; ok {
				t.Errorf("tuning declares no capabilities but got runtimeConfig %v", rc)
			}
			if calls[0].stdin["bridge"] != "br0" || calls[1].stdin["mtu"] != 1400.0 {
				t.Errorf("plugin configs lost their keys: %v, %v", calls[0].stdin, calls[1].stdin)
			}
			if res.Version() != v {
				t.Errorf("result version %s, want %s", res.Version(), v)
			}
			resJSON, err := json.Marshal(res)
			if err != nil {
				t.Fatal(err)
			}
			want := canon(t, []byte(tuningResult))
			if got := canon(t, resJSON); got != want {
				t.Errorf("Add result\n got %s\nwant %s (the last plugin's)", got, want)
			}
			path := cachePath(cacheDir, "green", "c1", "net1")
			entry := readCache(t, path)
			if entry.Kind != "cniCacheV1" || entry.ContainerID != "c1" || entry.IfName != "net1" ||
				entry.NetworkName != "green" || entry.NetNS != rt.NetNS || !reflect.DeepEqual(entry.CNIArgs, rt.Args) {
				t.Errorf("cache entry %+v does not describe the attachment", entry)
			}
			if string(entry.Config) != string(d.Bytes()) {
				t.Errorf("cached config %s, want %s", entry.Config, d.Bytes())
			}
			if got := canon(t, entry.Result); got != want {
				t.Errorf("cached result\n got %s\nwant %s", got, want)
			}

			// CHECK: from 0.4.0 on, with the cached result.
			if err := inv.Check(ctx, d, rt); err != nil {
				t.Fatalf("Check: %v", err)
			}
			calls = fx.took()
			if atLeast("0.4.0") {
				if got, want := commands(calls), []string{"CHECK bridge", "CHECK tuning"}; !reflect.DeepEqual(got, want) {
					t.Fatalf("CHECK calls %q, want %q", got, want)
				}
				for _, c := range calls {
					if got := prevResult(t, c); got != want {
						t.Errorf("%s prevResult\n got %s\nwant %s", c, got, want)
					}
				}
			} else if len(calls) != 0 {
				t.Errorf("CHECK on %s called %q, want no plugin", v, commands(calls))
			}

			// STATUS: only 1.1.0 has it.
			if err := inv.Status(ctx, d); err != nil {
				t.Fatalf("Status: %v", err)
			}
			calls = fx.took()
			if atLeast("1.1.0") {
				if got, want := commands(calls), []string{"STATUS bridge", "STATUS tuning"}; !reflect.DeepEqual(got, want) {
					t.Errorf("STATUS calls %q, want %q", got, want)
				}
			} else if len(calls) != 0 {
				t.Errorf("STATUS on %s called %q, want no plugin", v, commands(calls))
			}

			// DEL: reverse order, the cached result as prevResult from
			// 0.4.0 on, cache entry gone afterwards.
			if err := inv.Del(ctx, d, rt); err != nil {
				t.Fatalf("Del: %v", err)
			}
			calls = fx.took()
			if got, want := commands(calls), []string{"DEL tuning", "DEL bridge"}; !reflect.DeepEqual(got, want) {
				t.Fatalf("DEL calls %q, want %q", got, want)
			}
			for _, c := range calls {
				wantPrev := ""
				if atLeast("0.4.0") {
					wantPrev = want
				}
				if got := prevResult(t, c); got != wantPrev {
					t.Errorf("%s prevResult\n got %s\nwant %s", c, got, wantPrev)
				}
			}
			if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("cache entry still there after DEL: %v", err)
			}
		})
	}
}

// TestInvokerErrors checks that a failing plugin is named and its CNI code
// survives Rebuild.
func TestInvokerErrors(t *testing.T) {
	boom := &types.Error{Code: types.ErrInvalidNetworkConfig, Msg: "boom"}
	tests := []struct {
		name       string
		fail       map[string]error
		missing    []string
		run        func(ctx context.Context, inv *delegate.Invoker, d *delegate.Delegate, rt delegate.Runtime) error
		wantCalls  []string
		wantPlugin string
		wantCode   uint
		wantMsg    string
	}{
		{
			name:       "ADD fails in the second plugin",
			fail:       map[string]error{"tuning ADD": boom},
			run:        add,
			wantCalls:  []string{"ADD bridge", "ADD tuning"},
			wantPlugin: "tuning", wantCode: 7, wantMsg: "boom",
		},
		{
			name:       "ADD fails in the first plugin",
			fail:       map[string]error{"bridge ADD": &types.Error{Code: 11, Msg: "no lease yet"}},
			run:        add,
			wantCalls:  []string{"ADD bridge"},
			wantPlugin: "bridge", wantCode: 11, wantMsg: "no lease yet",
		},
		{
			name:       "ADD with an error without a code",
			fail:       map[string]error{"tuning ADD": errors.New("signal: killed")},
			run:        add,
			wantCalls:  []string{"ADD bridge", "ADD tuning"},
			wantPlugin: "tuning", wantCode: types.ErrInternal, wantMsg: "signal: killed",
		},
		{
			name:       "second plugin not installed",
			missing:    []string{"tuning"},
			run:        add,
			wantCalls:  []string{"ADD bridge"},
			wantPlugin: "tuning", wantCode: types.ErrInvalidNetworkConfig, wantMsg: "tuning",
		},
		{
			name: "DEL fails in the last plugin of the chain",
			fail: map[string]error{"tuning DEL": boom},
			run: func(ctx context.Context, inv *delegate.Invoker, d *delegate.Delegate, rt delegate.Runtime) error {
				return inv.Del(ctx, d, rt)
			},
			wantCalls:  []string{"DEL tuning"},
			wantPlugin: "tuning", wantCode: 7, wantMsg: "boom",
		},
		{
			name: "CHECK fails",
			fail: map[string]error{"tuning CHECK": &types.Error{Code: 100, Msg: "mtu drifted"}},
			run: func(ctx context.Context, inv *delegate.Invoker, d *delegate.Delegate, rt delegate.Runtime) error {
				return inv.Check(ctx, d, rt)
			},
			wantCalls:  []string{"CHECK bridge", "CHECK tuning"},
			wantPlugin: "tuning", wantCode: 100, wantMsg: "mtu drifted",
		},
		{
			name: "STATUS fails",
			fail: map[string]error{"bridge STATUS": &types.Error{Code: 50, Msg: "not ready"}},
			run: func(ctx context.Context, inv *delegate.Invoker, d *delegate.Delegate, _ delegate.Runtime) error {
				return inv.Status(ctx, d)
			},
			wantCalls:  []string{"STATUS bridge"},
			wantPlugin: "bridge", wantCode: 50, wantMsg: "not ready",
		},
		{
			name: "GC fails",
			fail: map[string]error{"tuning GC": boom},
			run: func(ctx context.Context, inv *delegate.Invoker, d *delegate.Delegate, _ delegate.Runtime) error {
				return inv.GC(ctx, d, nil)
			},
			wantCalls:  []string{"GC bridge", "GC tuning"},
			wantPlugin: "tuning", wantCode: 7, wantMsg: "boom",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			cacheDir := t.TempDir()
			fx := newFake()
			for k, err := range tt.fail {
				fx.fail[k] = err
			}
			for _, p := range tt.missing {
				fx.missing[p] = true
			}
			inv := delegate.NewInvoker(binDirs, cacheDir, fx)
			d := chain(t, "1.1.0")
			rt := runtimeFor("c1")

			err := tt.run(ctx, inv, d, rt)
			if err == nil {
				t.Fatal("no error")
			}
			if got := commands(fx.took()); !reflect.DeepEqual(got, tt.wantCalls) {
				t.Errorf("calls %q, want %q", got, tt.wantCalls)
			}
			var de *delegate.Error
			if !errors.As(err, &de) {
				t.Fatalf("error %v (%T) holds no *delegate.Error", err, err)
			}
			if de.Plugin != tt.wantPlugin {
				t.Errorf("Plugin %q, want %q", de.Plugin, tt.wantPlugin)
			}
			var te *types.Error
			if tt.wantCode != types.ErrInternal && (!errors.As(err, &te) || te.Code != tt.wantCode) {
				t.Errorf("error chain %v lost the CNI code %d", err, tt.wantCode)
			}
			rebuilt := delegate.Rebuild(err, "ns/net", "net1")
			if rebuilt.Code != tt.wantCode {
				t.Errorf("Rebuild code %d, want %d (%q)", rebuilt.Code, tt.wantCode, rebuilt.Msg)
			}
			for _, part := range []string{"ns/net", tt.wantPlugin, "net1", tt.wantMsg} {
				if !strings.Contains(rebuilt.Msg, part) {
					t.Errorf("Rebuild message %q does not contain %q", rebuilt.Msg, part)
				}
			}
			if _, err := os.Stat(cachePath(cacheDir, "green", "c1", "net1")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a failed call left a cache entry: %v", err)
			}
		})
	}
}

func add(ctx context.Context, inv *delegate.Invoker, d *delegate.Delegate, rt delegate.Runtime) error {
	_, err := inv.Add(ctx, d, rt)
	return err
}

func TestInvokerGC(t *testing.T) {
	tests := []struct {
		version string
		// wantGC: the chain gets GC with the valid attachments.
		wantGC bool
	}{
		{version: "1.0.0", wantGC: false},
		{version: "1.1.0", wantGC: true},
	}
	for _, tt := range tests {
		t.Run(tt.version, func(t *testing.T) {
			ctx := context.Background()
			cacheDir := t.TempDir()
			fx := newFake()
			inv := delegate.NewInvoker(binDirs, cacheDir, fx)
			d := chain(t, tt.version)
			for _, id := range []string{"c1", "c2"} {
				if _, err := inv.Add(ctx, d, runtimeFor(id)); err != nil {
					t.Fatalf("Add %s: %v", id, err)
				}
			}
			fx.took()

			valid := []types.GCAttachment{{ContainerID: "c1", IfName: "net1"}}
			if err := inv.GC(ctx, d, valid); err != nil {
				t.Fatalf("GC: %v", err)
			}
			calls := fx.took()
			want := []string{"DEL tuning", "DEL bridge"}
			if tt.wantGC {
				want = append(want, "GC bridge", "GC tuning")
			}
			if got := commands(calls); !reflect.DeepEqual(got, want) {
				t.Fatalf("GC calls %q, want %q", got, want)
			}
			for _, c := range calls[:2] {
				if c.env["CNI_CONTAINERID"] != "c2" || c.env["CNI_IFNAME"] != "net1" {
					t.Errorf("%s deleted %s/%s, want the stale c2/net1", c, c.env["CNI_CONTAINERID"], c.env["CNI_IFNAME"])
				}
			}
			wantValid := []any{map[string]any{"containerID": "c1", "ifname": "net1"}}
			for _, c := range calls[2:] {
				if got := c.stdin["cni.dev/valid-attachments"]; !reflect.DeepEqual(got, wantValid) {
					t.Errorf("%s: cni.dev/valid-attachments %v, want %v", c, got, wantValid)
				}
				if c.stdin["name"] != "green" {
					t.Errorf("%s: name %v, want green", c, c.stdin["name"])
				}
			}
			if _, err := os.Stat(cachePath(cacheDir, "green", "c1", "net1")); err != nil {
				t.Errorf("valid attachment's cache entry: %v", err)
			}
			if _, err := os.Stat(cachePath(cacheDir, "green", "c2", "net1")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("stale attachment's cache entry still there: %v", err)
			}
		})
	}
}

func TestSetCachedResult(t *testing.T) {
	ctx := context.Background()
	cacheDir := t.TempDir()
	fx := newFake()
	inv := delegate.NewInvoker(binDirs, cacheDir, fx)
	d := chain(t, "1.0.0")
	rt := runtimeFor("c1")
	if _, err := inv.Add(ctx, d, rt); err != nil {
		t.Fatalf("Add: %v", err)
	}
	path := cachePath(cacheDir, "green", "c1", "net1")
	before := readCache(t, path)

	// What braid records after moving the default route onto net1.
	newRes, err := types100.NewResultFromResult(mustResult(t, tuningResult))
	if err != nil {
		t.Fatal(err)
	}
	newRes.Routes = append(newRes.Routes, &types.Route{Dst: mustCIDR(t, "0.0.0.0/0"), GW: newRes.IPs[0].Gateway})
	if err := inv.SetCachedResult(d, rt, newRes); err != nil {
		t.Fatalf("SetCachedResult: %v", err)
	}
	after := readCache(t, path)
	newJSON, err := json.Marshal(newRes)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := canon(t, after.Result), canon(t, newJSON); got != want {
		t.Errorf("cached result\n got %s\nwant %s", got, want)
	}
	before.Result, after.Result = nil, nil
	if !reflect.DeepEqual(after, before) {
		t.Errorf("the rest of the cache entry changed:\n got %+v\nwant %+v", after, before)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("cache file mode %v, want 0600", perm)
	}
	if names := listDir(t, filepath.Dir(path)); !reflect.DeepEqual(names, []string{".", filepath.Base(path)}) {
		t.Errorf("results dir holds %q, want only %s (no temp file)", names, filepath.Base(path))
	}

	// DEL now hands the new result to the plugins.
	fx.took()
	if err := inv.Del(ctx, d, rt); err != nil {
		t.Fatalf("Del: %v", err)
	}
	for _, c := range fx.took() {
		if got, want := prevResult(t, c), canon(t, newJSON); got != want {
			t.Errorf("%s prevResult\n got %s\nwant %s", c, got, want)
		}
	}
}

func TestSetCachedResultMissingEntry(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, cacheDir string)
	}{
		{name: "no cache dir", setup: func(*testing.T, string) {}},
		{name: "other entries only", setup: func(t *testing.T, cacheDir string) {
			if err := os.MkdirAll(filepath.Join(cacheDir, "results"), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(cachePath(cacheDir, "green", "c1", "net2"), []byte(`{"kind":"cniCacheV1"}`), 0o600); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cacheDir := t.TempDir()
			tt.setup(t, cacheDir)
			before := listDir(t, cacheDir)
			fx := newFake()
			inv := delegate.NewInvoker(binDirs, cacheDir, fx)
			if err := inv.SetCachedResult(chain(t, "1.0.0"), runtimeFor("c1"), mustResult(t, tuningResult)); err != nil {
				t.Fatalf("SetCachedResult: %v", err)
			}
			if after := listDir(t, cacheDir); !reflect.DeepEqual(after, before) {
				t.Errorf("cache dir changed from %q to %q", before, after)
			}
			if calls := fx.took(); len(calls) != 0 {
				t.Errorf("plugins called: %q", commands(calls))
			}
		})
	}
}

func TestSetCachedResultCorruptEntry(t *testing.T) {
	cacheDir := t.TempDir()
	path := cachePath(cacheDir, "green", "c1", "net1")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(`{"kind":`), 0o600); err != nil {
		t.Fatal(err)
	}
	inv := delegate.NewInvoker(binDirs, cacheDir, newFake())
	err := inv.SetCachedResult(chain(t, "1.0.0"), runtimeFor("c1"), mustResult(t, tuningResult))
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("error %v, want one naming %s", err, path)
	}
	if data, _ := os.ReadFile(path); string(data) != `{"kind":` {
		t.Errorf("corrupt entry rewritten to %s", data)
	}
}

func listDir(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(path string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		out = append(out, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func mustResult(t *testing.T, s string) types.Result {
	t.Helper()
	res, err := create.CreateFromBytes([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func mustCIDR(t *testing.T, s string) net.IPNet {
	t.Helper()
	_, ipn, err := net.ParseCIDR(s)
	if err != nil {
		t.Fatal(err)
	}
	return *ipn
}

// TestInvokerMarksDelegates: every plugin braid runs, in every verb, gets
// the caller mark naming the container, so a braid it starts refuses.
func TestInvokerMarksDelegates(t *testing.T) {
	f := newFake()
	inv := delegate.NewInvoker(binDirs, t.TempDir(), f)
	d := chain(t, "1.1.0")
	rt := runtimeFor("c-mark")
	ctx := context.Background()
	if _, err := inv.Add(ctx, d, rt); err != nil {
		t.Fatal(err)
	}
	if err := inv.Check(ctx, d, rt); err != nil {
		t.Fatal(err)
	}
	if err := inv.Del(ctx, d, rt); err != nil {
		t.Fatal(err)
	}
	if err := inv.Status(ctx, d); err != nil {
		t.Fatal(err)
	}
	calls := f.took()
	if len(calls) < 7 {
		t.Fatalf("calls = %v, want ADD, CHECK, DEL and STATUS of both plugins", calls)
	}
	for _, c := range calls {
		want := "c-mark"
		if c.command == "STATUS" {
			want = "?" // STATUS has no container
		}
		if got := c.env[caller.Env]; got != want {
			t.Errorf("%s ran with %s=%q, want %q", c, caller.Env, got, want)
		}
	}
}
