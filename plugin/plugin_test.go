package plugin

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"

	"github.com/braid-cni/braid/internal/testutil"
	"github.com/braid-cni/braid/journal"
	"github.com/braid-cni/braid/plan"
)

// errPluginNotAvailable is the spec's code 50, which STATUS returns when
// the plugin cannot serve ADD; the types package has no name for it.
const errPluginNotAvailable uint = 50

// printed is a CNI result as braid prints it, any version from 0.3.0 on.
type printed struct {
	CNIVersion string `json:"cniVersion"`
	Interfaces []struct {
		Name    string `json:"name"`
		Sandbox string `json:"sandbox"`
	} `json:"interfaces"`
	IPs []struct {
		Address   string `json:"address"`
		Interface *int   `json:"interface"`
	} `json:"ips"`
}

func assertNoFile(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s: err = %v, want it gone", path, err)
	}
}

func journaled(t *testing.T, e *env, id string) *plan.Plan {
	t.Helper()
	p, err := journal.New(e.cniDir).Load(id)
	if err != nil {
		t.Fatalf("journal of %s: %v", id, err)
	}
	return p
}

// TestLifecycle runs ADD, CHECK and DEL at every CNI version.
func TestLifecycle(t *testing.T) {
	for _, v := range testutil.SpecVersions() {
		t.Run(v, func(t *testing.T) {
			e := newEnv(t, v)
			args := e.args(t, "c1", nil)

			if err := e.plugin.Add(args); err != nil {
				t.Fatalf("Add: %v", err)
			}
			var res printed
			if err := json.Unmarshal(e.stdout.Bytes(), &res); err != nil {
				t.Fatalf("printed result %q: %v", e.stdout, err)
			}
			if res.CNIVersion != v {
				t.Errorf("result cniVersion = %q, want %q", res.CNIVersion, v)
			}
			if len(res.Interfaces) != 1 || res.Interfaces[0].Name != "eth0" || res.Interfaces[0].Sandbox != args.Netns {
				t.Errorf("result interfaces = %+v, want eth0 in %s", res.Interfaces, args.Netns)
			}
			if len(res.IPs) != 1 || res.IPs[0].Address != "10.244.0.5/24" || res.IPs[0].Interface == nil || *res.IPs[0].Interface != 0 {
				t.Errorf("result IPs = %+v, want 10.244.0.5/24 on interface 0", res.IPs)
			}
			if got, want := e.exec.Seen(), []string{"ADD ptp c1 eth0"}; !slices.Equal(got, want) {
				t.Errorf("exec calls = %q, want %q", got, want)
			}
			add := e.exec.CallsOf("ADD")[0]
			if add.Netns != args.Netns || add.CNIArgs != podArgs {
				t.Errorf("ADD got netns %q CNI_ARGS %q, want %q %q", add.Netns, add.CNIArgs, args.Netns, podArgs)
			}
			if p := journaled(t, e, "c1"); len(p.Attachments) != 1 || p.Attachments[0].Network != "podnet" || len(p.Attachments[0].Result) == 0 {
				t.Errorf("journal = %+v, want podnet on eth0 with its result", p.Attachments)
			}

			if err := e.plugin.Check(args); err != nil {
				t.Fatalf("Check: %v", err)
			}
			// 0.3.x has no CHECK; libcni skips it.
			wantChecks := 1
			if v == "0.3.1" {
				wantChecks = 0
			}
			if got := len(e.exec.CallsOf("CHECK")); got != wantChecks {
				t.Errorf("CHECK ran %d times, want %d", got, wantChecks)
			}

			if err := e.plugin.Del(args); err != nil {
				t.Fatalf("Del: %v", err)
			}
			if got, want := e.exec.Seen("DEL"), []string{"DEL ptp c1 eth0"}; !slices.Equal(got, want) {
				t.Errorf("DEL calls = %q, want %q", got, want)
			}
			assertNoFile(t, e.journalPath("c1"))
			assertNoFile(t, filepath.Join(e.cniDir, "results", "podnet-c1-eth0"))
		})
	}
}

func TestInvalidConfig(t *testing.T) {
	tests := []struct {
		name  string
		extra map[string]any
		key   string
	}{
		{"unsupported cniVersion", map[string]any{"cniVersion": "0.2.0"}, "cniVersion"},
		{"no cniVersion", map[string]any{"cniVersion": nil}, "cniVersion"},
		{"relative binDir", map[string]any{"binDir": "opt/cni/bin"}, "binDir"},
		{"relative cniDir", map[string]any{"cniDir": "var/lib/cni"}, "cniDir"},
		{"unknown logLevel", map[string]any{"logLevel": "loud"}, "logLevel"},
		{"clusterNetwork of the wrong type", map[string]any{"clusterNetwork": 5}, "clusterNetwork"},
		{"no cluster network", map[string]any{"clusterNetwork": nil}, "clusterNetwork"},
		{"bad multusNamespace", map[string]any{"multusNamespace": "Kube_System"}, "multusNamespace"},
	}
	verbs := []struct {
		name string
		run  func(p *Plugin, a *skel.CmdArgs) error
	}{
		{"ADD", (*Plugin).Add}, {"DEL", (*Plugin).Del}, {"CHECK", (*Plugin).Check},
		{"STATUS", (*Plugin).Status}, {"GC", (*Plugin).GC},
	}
	for _, tt := range tests {
		for _, verb := range verbs {
			t.Run(tt.name+"/"+verb.name, func(t *testing.T) {
				e := newEnv(t, "1.1.0")
				err := verb.run(e.plugin, e.args(t, "c1", tt.extra))
				te := testutil.CNIError(t, err)
				if te.Code != types.ErrInvalidNetworkConfig {
					t.Errorf("code = %d, want %d (%v)", te.Code, types.ErrInvalidNetworkConfig, te)
				}
				if !strings.Contains(te.Msg, tt.key) {
					t.Errorf("message %q does not name key %q", te.Msg, tt.key)
				}
				if got := e.exec.Seen(); len(got) != 0 {
					t.Errorf("exec calls = %q, want none", got)
				}
				if e.stdout.Len() != 0 {
					t.Errorf("printed %q, want nothing", e.stdout)
				}
			})
		}
	}
}

func TestInvalidCNIArgs(t *testing.T) {
	e := newEnv(t, "1.0.0")
	args := e.args(t, "c1", nil)
	args.Args = "K8S_POD_NAME=web;SOMETHING_ELSE=1" // no IgnoreUnknown
	te := testutil.CNIError(t, e.plugin.Add(args))
	if te.Code != types.ErrInvalidNetworkConfig || !strings.Contains(te.Msg, "CNI_ARGS") {
		t.Errorf("error = %d %q, want code 7 about CNI_ARGS", te.Code, te.Msg)
	}
	if got := e.exec.Seen(); len(got) != 0 {
		t.Errorf("exec calls = %q, want none", got)
	}
}

func TestReadinessIndicatorFile(t *testing.T) {
	tests := []struct {
		name     string
		create   bool
		wantCode uint // 0: ADD succeeds
	}{
		{name: "missing", wantCode: types.ErrTryAgainLater},
		{name: "present", create: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, "1.0.0")
			e.plugin.ReadinessTimeout = 50 * time.Millisecond
			ready := filepath.Join(t.TempDir(), "cluster-ready")
			if tt.create {
				if err := os.WriteFile(ready, nil, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			start := time.Now()
			err := e.plugin.Add(e.args(t, "c1", map[string]any{"readinessindicatorfile": ready}))
			if tt.wantCode == 0 {
				if err != nil {
					t.Fatalf("Add: %v", err)
				}
				if got := e.exec.Seen(); len(got) != 1 {
					t.Errorf("exec calls = %q, want one ADD", got)
				}
				return
			}
			te := testutil.CNIError(t, err)
			if te.Code != tt.wantCode || !strings.Contains(te.Msg, ready) {
				t.Errorf("error = %d %q, want code %d naming %s", te.Code, te.Msg, tt.wantCode, ready)
			}
			if elapsed := time.Since(start); elapsed > 5*time.Second {
				t.Errorf("ADD took %s, want about the readiness timeout", elapsed)
			}
			if got := e.exec.Seen(); len(got) != 0 {
				t.Errorf("exec calls = %q, want none", got)
			}
			assertNoFile(t, e.journalPath("c1"))
		})
	}
}

// DEL without a usable journal entry falls back to the cluster network: with
// no API access that is all braid can know of.
func TestDelWithoutJournal(t *testing.T) {
	tests := []struct {
		name    string
		journal string // "" writes no entry
	}{
		{name: "no entry"},
		{name: "corrupt entry", journal: `{"version":1,"containerID":"c1","attachments":[{`},
		{name: "entry of another format", journal: `{"version":99,"containerID":"c1","attachments":[]}`},
		{name: "entry without attachments config", journal: `{"version":1,"containerID":"c1","attachments":[{"ifName":"eth0"}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, "1.0.0")
			if tt.journal != "" {
				if err := os.MkdirAll(e.cniDir, 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(e.journalPath("c1"), []byte(tt.journal), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			args := e.args(t, "c1", nil)
			if err := e.plugin.Del(args); err != nil {
				t.Fatalf("Del: %v", err)
			}
			if got, want := e.exec.Seen(), []string{"DEL ptp c1 eth0"}; !slices.Equal(got, want) {
				t.Errorf("exec calls = %q, want %q", got, want)
			}
			if del := e.exec.CallsOf("DEL"); len(del) == 1 && del[0].Netns != args.Netns {
				t.Errorf("DEL netns = %q, want %q", del[0].Netns, args.Netns)
			}
			assertNoFile(t, e.journalPath("c1"))
		})
	}
}

func TestDelTwice(t *testing.T) {
	e := newEnv(t, "1.0.0")
	args := e.args(t, "c1", nil)
	if err := e.plugin.Add(args); err != nil {
		t.Fatalf("Add: %v", err)
	}
	for i := 0; i < 2; i++ {
		if err := e.plugin.Del(args); err != nil {
			t.Fatalf("Del %d: %v", i+1, err)
		}
	}
	if got, want := e.exec.Seen("DEL"), []string{"DEL ptp c1 eth0", "DEL ptp c1 eth0"}; !slices.Equal(got, want) {
		t.Errorf("DEL calls = %q, want %q", got, want)
	}
	assertNoFile(t, e.journalPath("c1"))
}

func TestDelFailureKeepsJournal(t *testing.T) {
	e := newEnv(t, "1.0.0")
	args := e.args(t, "c1", nil)
	if err := e.plugin.Add(args); err != nil {
		t.Fatalf("Add: %v", err)
	}
	e.exec.Fail["DEL"] = types.NewError(types.ErrTryAgainLater, "ipam store locked", "")
	te := testutil.CNIError(t, e.plugin.Del(args))
	if te.Code != types.ErrTryAgainLater || !strings.Contains(te.Msg, "podnet") || !strings.Contains(te.Msg, "ipam store locked") {
		t.Errorf("error = %d %q, want code 11 naming podnet and the plugin's message", te.Code, te.Msg)
	}
	journaled(t, e, "c1")
}

func TestAddFailure(t *testing.T) {
	e := newEnv(t, "1.0.0")
	e.exec.Fail["ADD"] = types.NewError(types.ErrTryAgainLater, "no addresses left", "")
	te := testutil.CNIError(t, e.plugin.Add(e.args(t, "c1", nil)))
	if te.Code != types.ErrTryAgainLater {
		t.Errorf("code = %d, want %d (%v)", te.Code, types.ErrTryAgainLater, te)
	}
	for _, s := range []string{"podnet", "ptp", "eth0", "no addresses left"} {
		if !strings.Contains(te.Msg, s) {
			t.Errorf("message %q does not contain %q", te.Msg, s)
		}
	}
	if got, want := e.exec.Seen(), []string{"ADD ptp c1 eth0", "DEL ptp c1 eth0"}; !slices.Equal(got, want) {
		t.Errorf("exec calls = %q, want %q", got, want)
	}
	if e.stdout.Len() != 0 {
		t.Errorf("printed %q, want nothing", e.stdout)
	}
	assertNoFile(t, e.journalPath("c1"))
}

func TestCheckWithoutAdd(t *testing.T) {
	tests := []struct {
		name    string
		journal string
	}{
		{name: "no entry"},
		{name: "corrupt entry", journal: "not json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, "1.0.0")
			if tt.journal != "" {
				if err := os.MkdirAll(e.cniDir, 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(e.journalPath("c1"), []byte(tt.journal), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			te := testutil.CNIError(t, e.plugin.Check(e.args(t, "c1", nil)))
			if te.Code != types.ErrInvalidNetworkConfig || !strings.Contains(te.Msg, "c1") {
				t.Errorf("error = %d %q, want code 7 naming the container", te.Code, te.Msg)
			}
			if got := e.exec.Seen(); len(got) != 0 {
				t.Errorf("exec calls = %q, want none", got)
			}
		})
	}
}

func TestStatus(t *testing.T) {
	tests := []struct {
		name           string
		clusterVersion string
		fail           error
		wantCalls      []string
		wantCode       uint
	}{
		{name: "1.1.0 cluster network", clusterVersion: "1.1.0", wantCalls: []string{"STATUS ptp"}},
		{
			name: "1.1.0 cluster network not ready", clusterVersion: "1.1.0",
			fail:      types.NewError(errPluginNotAvailable, "ipam down", ""),
			wantCalls: []string{"STATUS ptp"},
			wantCode:  errPluginNotAvailable,
		},
		// Before 1.1.0 there is no STATUS: ready by definition.
		{name: "1.0.0 cluster network", clusterVersion: "1.0.0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, "1.1.0")
			e.writeCluster(t, tt.clusterVersion)
			if tt.fail != nil {
				e.exec.Fail["STATUS"] = tt.fail
			}
			// The runtime sends STATUS with the config alone.
			err := e.plugin.Status(&skel.CmdArgs{StdinData: e.conf(t, nil)})
			if got := e.exec.Seen(); !slices.Equal(got, tt.wantCalls) {
				t.Errorf("exec calls = %q, want %q", got, tt.wantCalls)
			}
			if tt.wantCode == 0 {
				if err != nil {
					t.Fatalf("Status: %v", err)
				}
				return
			}
			te := testutil.CNIError(t, err)
			if te.Code != tt.wantCode || !strings.Contains(te.Msg, "podnet") {
				t.Errorf("error = %d %q, want code %d naming podnet", te.Code, te.Msg, tt.wantCode)
			}
		})
	}
}

func TestGC(t *testing.T) {
	for _, v := range []string{"1.0.0", "1.1.0"} {
		t.Run(v, func(t *testing.T) {
			e := newEnv(t, "1.1.0")
			e.writeCluster(t, v)
			for _, id := range []string{"ca", "cb"} {
				if err := e.plugin.Add(e.args(t, id, nil)); err != nil {
					t.Fatalf("Add %s: %v", id, err)
				}
			}
			valid := []types.GCAttachment{{ContainerID: "ca", IfName: "eth0"}}
			err := e.plugin.GC(&skel.CmdArgs{StdinData: e.conf(t, map[string]any{"cni.dev/valid-attachments": valid})})
			if err != nil {
				t.Fatalf("GC: %v", err)
			}

			if got, want := e.exec.Seen("DEL"), []string{"DEL ptp cb eth0"}; !slices.Equal(got, want) {
				t.Errorf("DEL calls = %q, want %q", got, want)
			}
			assertNoFile(t, e.journalPath("cb"))
			assertNoFile(t, filepath.Join(e.cniDir, "results", "podnet-cb-eth0"))
			journaled(t, e, "ca")
			if _, err := os.Stat(filepath.Join(e.cniDir, "results", "podnet-ca-eth0")); err != nil {
				t.Errorf("cached result of ca: %v, want it kept", err)
			}

			gcs := e.exec.CallsOf("GC")
			if v != "1.1.0" {
				if len(gcs) != 0 {
					t.Errorf("GC sent %d times to a %s network, want never", len(gcs), v)
				}
				return
			}
			if len(gcs) != 1 || gcs[0].Plugin != "ptp" {
				t.Fatalf("GC calls = %q, want one to ptp", e.exec.Seen("GC"))
			}
			var conf struct {
				Valid []types.GCAttachment `json:"cni.dev/valid-attachments"`
			}
			if err := json.Unmarshal(gcs[0].Stdin, &conf); err != nil {
				t.Fatalf("GC stdin: %v", err)
			}
			if !slices.Equal(conf.Valid, valid) {
				t.Errorf("GC valid attachments = %+v, want %+v", conf.Valid, valid)
			}
		})
	}
}
