package server

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"

	"github.com/braid-cni/braid/internal/testutil"
	"github.com/braid-cni/braid/wire"
)

// statusRequest is the runtime's STATUS: the config alone, no container.
// It makes the env's cluster network cniVersion 1.1.0, the first that has
// STATUS (libcni skips older ones).
func statusRequest(t *testing.T, e *env) *wire.Request {
	t.Helper()
	settings, err := e.settings()
	if err != nil {
		t.Fatal(err)
	}
	const conflist = `{"cniVersion":"1.1.0","name":"podnet","plugins":[{"type":"ptp"}]}`
	if err := os.WriteFile(settings.ClusterNetwork, []byte(conflist), 0o600); err != nil {
		t.Fatal(err)
	}
	return wire.NewRequest("STATUS", &skel.CmdArgs{Path: "/opt/cni/bin", StdinData: e.stdin})
}

// TestStatusNotQueued: STATUS is answered while ADDs hold every slot of
// the concurrency bound; queued behind them it would time out and the
// kubelet would report the node's network not ready.
func TestStatusNotQueued(t *testing.T) {
	e := newEnv(t)
	e.exec.Hold, e.exec.Entered = make(chan struct{}), make(chan testutil.ExecCall)
	e.serve(t, &Server{Settings: e.settings, Core: e.core, Timeout: e.timeout, MaxConcurrent: 1})
	added := make(chan error, 1)
	go func() {
		resp, err := wire.Forward(context.Background(), e.sock(), wire.NewRequest("ADD", e.args("c1")))
		if err == nil && resp.Error != nil {
			err = resp.Error
		}
		added <- err
	}()
	<-e.exec.Entered // the ADD holds the only slot
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := wire.Forward(ctx, e.sock(), statusRequest(t, e))
	if err != nil || resp.Error != nil {
		t.Errorf("STATUS while an ADD holds the only slot: %v %+v, want success", err, resp)
	}
	close(e.exec.Hold)
	if err := <-added; err != nil {
		t.Errorf("ADD: %v", err)
	}
	if got, want := e.exec.Seen(), []string{"ADD ptp c1 eth0", "STATUS ptp"}; !slices.Equal(got, want) {
		t.Errorf("exec calls = %q, want %q", got, want)
	}
}

// TestStatusShared: STATUS calls that arrive while one asks the cluster
// network share its answer, success or the delegate's error with its code:
// one delegate STATUS for all of them.
func TestStatusShared(t *testing.T) {
	const callers = 5
	for _, fail := range []error{nil, types.NewError(types.ErrTryAgainLater, "podnet: no route to the overlay", "")} {
		synctest.Test(t, func(t *testing.T) {
			e := newEnv(t)
			e.exec.Hold, e.exec.Entered, e.exec.HoldCommand = make(chan struct{}), make(chan testutil.ExecCall, callers), "STATUS"
			if fail != nil {
				e.exec.Fail["STATUS"] = fail
			}
			s := &Server{Settings: e.settings, Core: e.core, Timeout: e.timeout}
			s.init()
			req := statusRequest(t, e)
			answers := make(chan *wire.Response, callers)
			for range callers {
				go func() {
					resp, _ := s.status(t.Context(), req)
					answers <- resp
				}()
			}
			synctest.Wait() // every caller is in: asking, or waiting for the one asking
			close(e.exec.Hold)
			for range callers {
				resp := <-answers
				switch {
				case resp == nil:
					t.Error("a caller got no answer")
				case fail == nil && resp.Error != nil:
					t.Errorf("STATUS = %+v, want success", resp.Error)
				case fail != nil && (resp.Error == nil || resp.Error.Code != types.ErrTryAgainLater || !strings.Contains(resp.Error.Msg, "no route to the overlay")):
					t.Errorf("STATUS = %+v, want the delegate's error, code %d kept", resp.Error, types.ErrTryAgainLater)
				}
			}
			if n := len(e.exec.Seen()); n != 1 {
				t.Errorf("%d callers made %d delegate STATUS calls (%q), want 1", callers, n, e.exec.Seen())
			}
		})
	}
}

// TestStatusCallerGone: a caller that stops waiting gets no answer, and the
// call it started still answers the others.
func TestStatusCallerGone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		e.exec.Hold, e.exec.Entered, e.exec.HoldCommand = make(chan struct{}), make(chan testutil.ExecCall, 2), "STATUS"
		s := &Server{Settings: e.settings, Core: e.core, Timeout: e.timeout}
		s.init()
		req := statusRequest(t, e)
		ctx, cancel := context.WithCancel(t.Context())
		first := make(chan *wire.Response, 1)
		go func() {
			resp, _ := s.status(ctx, req)
			first <- resp
		}()
		synctest.Wait()
		second := make(chan *wire.Response, 1)
		go func() {
			resp, _ := s.status(t.Context(), req)
			second <- resp
		}()
		synctest.Wait()
		cancel()
		if resp := <-first; resp != nil {
			t.Errorf("the caller that went away got %+v", resp)
		}
		close(e.exec.Hold)
		if resp := <-second; resp == nil || resp.Error != nil {
			t.Errorf("the caller still waiting got %+v, want success", resp)
		}
		if n := len(e.exec.Seen()); n != 1 {
			t.Errorf("delegate STATUS calls %q, want 1", e.exec.Seen())
		}
	})
}
