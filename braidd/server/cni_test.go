package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/braid-cni/braid/internal/testutil"
	"github.com/braid-cni/braid/netconf"
	"github.com/braid-cni/braid/wire"
)

// TestAsCNIError: a verb's error reaches the shim as skel would print it.
func TestAsCNIError(t *testing.T) {
	delegate := types.NewError(types.ErrTryAgainLater, "network ns1/blue (macvlan, net1): busy", "details")
	tests := []struct {
		name string
		err  error
		want *types.Error
	}{
		{"CNI error", delegate, delegate},
		{"wrapped CNI error", fmt.Errorf("ADD of container c1: %w", delegate), delegate},
		{"plain error", errors.New("daemon caches gone"), types.NewError(types.ErrInternal, "daemon caches gone", "")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := asCNIError(tt.err); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("asCNIError = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestSettingsError: braidd's settings failing (no cluster network yet)
// fail the verb with their error unchanged.
func TestSettingsError(t *testing.T) {
	e := newEnv(t)
	notYet := types.NewError(types.ErrTryAgainLater, "braid daemon: no primary CNI config yet", "")
	fail := func() (*netconf.NetConf, error) { return nil, notYet }
	e.serve(t, &Server{Settings: fail, Core: e.core, Timeout: e.timeout})
	resp, err := wire.Forward(context.Background(), e.sock(), wire.NewRequest("ADD", e.args("c1")))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(resp.Error, notYet) {
		t.Errorf("ADD = %+v, want %+v", resp.Error, notYet)
	}
	if got := e.exec.Seen(); len(got) != 0 {
		t.Errorf("delegates ran: %q", got)
	}
}

// TestSettingsAreTheDaemons: whatever the caller's config says, braid's
// settings are braidd's: its cluster network, journal and bin dirs.
func TestSettingsAreTheDaemons(t *testing.T) {
	e := newEnv(t)
	evil := t.TempDir()
	stdin, err := json.Marshal(map[string]any{
		"cniVersion": "1.0.0", "name": "braid", "type": "braid-shim", "daemonSocketDir": e.socketDir,
		"clusterNetwork": filepath.Join(evil, "x.conflist"), "binDir": evil, "cniDir": evil, "confDir": evil,
		"logFile": filepath.Join(evil, "log"), "kubeconfig": filepath.Join(evil, "kubeconfig"),
		"delegates": []any{map[string]any{"cniVersion": "1.0.0", "name": "x", "type": "evil"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	e.stdin = stdin
	e.serve(t, &Server{Settings: e.settings, Core: e.core, Timeout: e.timeout})
	for _, command := range []string{"ADD", "DEL"} {
		resp, err := wire.Forward(context.Background(), e.sock(), wire.NewRequest(command, e.args("c1")))
		if err != nil || resp.Error != nil {
			t.Fatalf("%s: %v %+v", command, err, resp)
		}
	}
	if got, want := e.exec.Seen(), []string{"ADD ptp c1 eth0", "DEL ptp c1 eth0"}; !slices.Equal(got, want) {
		t.Errorf("exec calls = %q, want the daemon's cluster network %q", got, want)
	}
	entries, err := os.ReadDir(evil)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Errorf("the caller's directory has %v, want nothing written there", entries)
	}
}

// TestDelCancelsAdd: a DEL of a container whose ADD is in flight cancels
// that ADD, which rolls back; afterwards nothing is attached or journaled.
func TestDelCancelsAdd(t *testing.T) {
	e := newEnv(t)
	added := e.heldAdd(context.Background(), t)
	resp, err := wire.Forward(context.Background(), e.sock(), wire.NewRequest("DEL", e.args("c1")))
	if err != nil || resp.Error != nil {
		t.Fatalf("DEL: %v %+v", err, resp)
	}
	if a := <-added; a == nil || a.Error == nil {
		t.Errorf("ADD = %+v, want it cancelled", a)
	}
	// The ADD's rollback, then the DEL finding nothing journaled and
	// deleting the cluster network once more (idempotent).
	if got := e.exec.Seen(); len(got) < 2 || got[0] != "ADD ptp c1 eth0" || got[1] != "DEL ptp c1 eth0" {
		t.Errorf("exec calls = %q, want the ADD rolled back", got)
	}
	if _, err := os.Stat(filepath.Join(e.cniDir, "c1")); !os.IsNotExist(err) {
		t.Errorf("journal entry of c1: %v, want none", err)
	}
}

// TestCancelledConnectionRollsBack: a shim that goes away (the runtime
// gave up) cancels its ADD, which rolls back.
func TestCancelledConnectionRollsBack(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	gone := e.heldAdd(ctx, t)
	cancel()
	<-gone
	eventually(t, "the ADD rolled back", func() bool {
		got := e.exec.Seen()
		return len(got) == 2 && got[1] == "DEL ptp c1 eth0"
	})
	eventually(t, "no journal entry", func() bool {
		_, err := os.Stat(filepath.Join(e.cniDir, "c1"))
		return os.IsNotExist(err)
	})
}

// heldAdd serves e and sends an ADD of c1 under ctx that stays in its
// delegate until the test ends or the ADD is cancelled; it returns once the
// delegate runs. The daemon's answer (nil when the shim gave up) arrives on
// the channel.
func (e *env) heldAdd(ctx context.Context, t *testing.T) <-chan *wire.Response {
	t.Helper()
	e.exec.Hold, e.exec.Entered = make(chan struct{}), make(chan testutil.ExecCall)
	t.Cleanup(func() { close(e.exec.Hold) })
	e.serve(t, &Server{Settings: e.settings, Core: e.core, Timeout: e.timeout})
	added := make(chan *wire.Response, 1)
	go func() {
		resp, _ := wire.Forward(ctx, e.sock(), wire.NewRequest("ADD", e.args("c1")))
		added <- resp
	}()
	<-e.exec.Entered
	return added
}
