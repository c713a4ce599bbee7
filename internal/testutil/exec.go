package testutil

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/version"
)

// Exec is an invoke.Exec that runs no binary: every plugin is found in
// /fake/bin, each call is recorded, ADD answers a result for CNI_IFNAME in
// CNI_NETNS at the config's version (one address, its gateway as the
// default route, a nameserver), the other verbs print nothing.
type Exec struct {
	version.PluginDecoder
	// Fail maps a CNI_COMMAND to the error every call of it returns.
	Fail map[string]error
	// Quiet records nothing (benchmarks).
	Quiet bool
	// With Hold set, a call of HoldCommand (ADD when empty) first sends
	// its call on Entered, then waits until Hold is closed or its context
	// ends (as a real plugin is killed when libcni's context ends), and
	// only then fails as Fail says.
	Hold        chan struct{}
	Entered     chan ExecCall
	HoldCommand string

	mu    sync.Mutex
	calls []ExecCall
}

var _ invoke.Exec = (*Exec)(nil)

// NewExec returns an Exec with no failures.
func NewExec() *Exec { return &Exec{Fail: map[string]error{}} }

// ExecCall is one plugin execution as the fake saw it.
type ExecCall struct {
	Command     string // CNI_COMMAND
	Plugin      string // base name of the plugin path
	ContainerID string
	IfName      string
	Netns       string
	CNIArgs     string
	Env         map[string]string
	Stdin       []byte
}

// String reads "ADD bridge c1 net1".
func (c ExecCall) String() string {
	return strings.TrimSpace(fmt.Sprintf("%s %s %s %s", c.Command, c.Plugin, c.ContainerID, c.IfName))
}

// FindInPath finds every plugin.
func (f *Exec) FindInPath(plugin string, _ []string) (string, error) {
	return filepath.Join("/fake/bin", plugin), nil
}

// ExecPlugin records the call and answers it.
func (f *Exec) ExecPlugin(ctx context.Context, pluginPath string, stdin []byte, environ []string) ([]byte, error) {
	env := make(map[string]string, len(environ))
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	c := ExecCall{
		Command: env["CNI_COMMAND"], Plugin: filepath.Base(pluginPath), ContainerID: env["CNI_CONTAINERID"],
		IfName: env["CNI_IFNAME"], Netns: env["CNI_NETNS"], CNIArgs: env["CNI_ARGS"], Env: env,
		Stdin: append([]byte(nil), stdin...),
	}
	f.mu.Lock()
	if !f.Quiet {
		f.calls = append(f.calls, c)
	}
	err := f.Fail[c.Command]
	f.mu.Unlock()
	if hold := cmp.Or(f.HoldCommand, "ADD"); c.Command == hold && f.Hold != nil {
		f.Entered <- c
		select {
		case <-f.Hold:
		case <-ctx.Done():
			return nil, fmt.Errorf("fake %s: killed: %w", c.Plugin, ctx.Err())
		}
	}
	if err != nil {
		return nil, err
	}
	if c.Command != "ADD" {
		return nil, nil
	}
	var conf struct {
		CNIVersion string `json:"cniVersion"`
	}
	if err := json.Unmarshal(stdin, &conf); err != nil {
		return nil, fmt.Errorf("fake %s: stdin: %w", c.Plugin, err)
	}
	return []byte(fmt.Sprintf(`{"cniVersion":%q,`+
		`"interfaces":[{"name":%q,"mac":"0a:58:0a:f4:00:05","sandbox":%q}],`+
		`"ips":[{"address":"10.244.0.5/24","gateway":"10.244.0.1","interface":0}],`+
		`"routes":[{"dst":"0.0.0.0/0","gw":"10.244.0.1"}],`+
		`"dns":{"nameservers":["10.96.0.10"]}}`, conf.CNIVersion, c.IfName, c.Netns)), nil
}

// Seen lists the calls of the given commands (all without any), in order,
// as "ADD bridge c1 net1".
func (f *Exec) Seen(commands ...string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.calls {
		if len(commands) == 0 || slices.Contains(commands, c.Command) {
			out = append(out, c.String())
		}
	}
	return out
}

// CallsOf lists the calls of command, in order.
func (f *Exec) CallsOf(command string) []ExecCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []ExecCall
	for _, c := range f.calls {
		if c.Command == command {
			out = append(out, c)
		}
	}
	return out
}
