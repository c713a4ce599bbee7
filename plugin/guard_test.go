package plugin

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"

	"github.com/braid-cni/braid/caller"
	"github.com/braid-cni/braid/internal/testutil"
)

// TestRefusesUnderMark: a braid started by braid (or by a plugin braid ran)
// refuses every verb with code 7 and runs nothing, before forwarding too.
func TestRefusesUnderMark(t *testing.T) {
	e := newEnv(t, "1.1.0")
	e.plugin.Getenv = func(k string) string {
		if k == caller.Env {
			return "outer-container"
		}
		return ""
	}
	d := newFakeDaemon(t, nil)
	funcs := e.plugin.Funcs()
	for name, verb := range map[string]func(*skel.CmdArgs) error{
		"ADD": funcs.Add, "DEL": funcs.Del, "CHECK": funcs.Check, "STATUS": funcs.Status, "GC": funcs.GC,
	} {
		for _, forwarding := range []bool{false, true} {
			extra := map[string]any{}
			if forwarding {
				extra["daemonSocketDir"] = d.dir
			}
			te := testutil.CNIError(t, verb(e.args(t, "c1", extra)))
			if te.Code != types.ErrInvalidNetworkConfig || !strings.Contains(te.Msg, "called by braid") || !strings.Contains(te.Msg, "outer-container") {
				t.Errorf("%s (forwarding %v) = %+v, want code 7 naming the outer container", name, forwarding, te)
			}
		}
	}
	if got := e.exec.Seen(); len(got) != 0 {
		t.Errorf("ran %q, want nothing", got)
	}
	if got := d.requests(); len(got) != 0 {
		t.Errorf("daemon saw %+v, want nothing", got)
	}
	if _, err := os.Stat(e.journalPath("c1")); !os.IsNotExist(err) {
		t.Errorf("journal entry: %v, want none", err)
	}
}

// TestOneVerbPerContainer: a DEL that arrives while the same container's
// ADD runs waits for it (the thin plugin: another process); the verbs of
// another container do not wait.
func TestOneVerbPerContainer(t *testing.T) {
	e := newEnv(t, "1.1.0")
	e.exec.Hold, e.exec.Entered = make(chan struct{}), make(chan testutil.ExecCall)
	addDone := make(chan error, 1)
	go func() { addDone <- e.plugin.Add(e.args(t, "c1", nil)) }()
	<-e.exec.Entered // ADD is inside its delegate

	delDone := make(chan error, 1)
	go func() { delDone <- e.plugin.Del(e.args(t, "c1", nil)) }()
	other := make(chan error, 1)
	go func() { other <- e.plugin.Del(e.args(t, "c2", nil)) }()
	if err := <-other; err != nil {
		t.Fatalf("DEL of another container: %v", err)
	}
	select {
	case err := <-delDone:
		t.Fatalf("DEL of c1 returned (%v) while its ADD still runs", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(e.exec.Hold)
	if err := <-addDone; err != nil {
		t.Fatalf("ADD: %v", err)
	}
	if err := <-delDone; err != nil {
		t.Fatalf("DEL: %v", err)
	}
	want := []string{"ADD ptp c1 eth0", "DEL ptp c2 eth0", "DEL ptp c1 eth0"}
	if got := e.exec.Seen(); !slices.Equal(got, want) {
		t.Errorf("calls = %q, want %q (c1's DEL after its ADD)", got, want)
	}
	if _, err := os.Stat(e.journalPath("c1")); !os.IsNotExist(err) {
		t.Errorf("journal entry after DEL: %v, want none", err)
	}
}

// TestAddCancelledRollsBack: an ADD whose context ends (braidd: the shim's
// connection closed) rolls back: nothing stays attached or journaled.
func TestAddCancelledRollsBack(t *testing.T) {
	e := newEnv(t, "1.1.0")
	e.exec.Hold, e.exec.Entered = make(chan struct{}), make(chan testutil.ExecCall)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.plugin.Run(ctx, "ADD", e.args(t, "c1", nil)) }()
	<-e.exec.Entered
	cancel()
	if err := <-done; err == nil {
		t.Fatal("cancelled ADD succeeded")
	}
	if got, want := e.exec.Seen(), []string{"ADD ptp c1 eth0", "DEL ptp c1 eth0"}; !slices.Equal(got, want) {
		t.Errorf("calls = %q, want the ADD rolled back: %q", got, want)
	}
	if _, err := os.Stat(e.journalPath("c1")); !os.IsNotExist(err) {
		t.Errorf("journal entry: %v, want none", err)
	}
}
