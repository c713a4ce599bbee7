package server

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/braid-cni/braid/attacher"
	"github.com/braid-cni/braid/internal/testutil"
	"github.com/braid-cni/braid/netconf"
	"github.com/braid-cni/braid/plugin"
	"github.com/braid-cni/braid/wire"
)

func TestServeSocketModes(t *testing.T) {
	e := newEnv(t)
	// A directory left too open and a socket left by a daemon that died.
	if err := os.MkdirAll(e.socketDir, 0o755); err != nil {
		t.Fatal(err)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: e.sock(), Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	_ = ln.Close()

	e.serve(t, &Server{Settings: e.settings, Core: e.core, Timeout: e.timeout})
	for path, want := range map[string]fs.FileMode{e.socketDir: 0o700, e.sock(): 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s mode = %o, want %o", path, got, want)
		}
	}
	if fi, _ := os.Stat(e.sock()); fi.Mode().Type() != fs.ModeSocket {
		t.Errorf("%s is %s, want a socket", e.sock(), fi.Mode().Type())
	}
}

// TestServeRefusesLiveSocket: a second daemon does not take the socket of
// one that answers.
func TestServeRefusesLiveSocket(t *testing.T) {
	e := newEnv(t)
	e.serve(t, &Server{Settings: e.settings, Core: e.core, Timeout: e.timeout})
	err := (&Server{Settings: e.settings, Core: e.core, Timeout: e.timeout}).Serve(context.Background(), e.socketDir)
	if err == nil || !strings.Contains(err.Error(), "another braid daemon") {
		t.Errorf("second Serve = %v, want it refused", err)
	}
}

// TestAddRoundTrip: ADD through the shim prints what the plugin prints when
// it runs the verb itself, and DEL through the shim undoes it.
func TestAddRoundTrip(t *testing.T) {
	e := newEnv(t)
	args := e.args("c1")
	want := e.direct(t, "ADD", args)
	e.direct(t, "DEL", args)

	e.serve(t, &Server{Settings: e.settings, Core: e.core, Timeout: e.timeout})
	resp, err := wire.Forward(context.Background(), e.sock(), wire.NewRequest("ADD", args))
	if err != nil {
		t.Fatalf("Forward: %v", err)
	}
	if resp.Error != nil || string(resp.Stdout) != want {
		t.Errorf("forwarded ADD = %q, %v; want %q", resp.Stdout, resp.Error, want)
	}
	// The whole shim: the plugin as the runtime runs it, config unchanged.
	var got bytes.Buffer
	sh := &plugin.Plugin{Stdout: &got, Stderr: io.Discard, Timeout: e.timeout}
	if err := sh.Del(args); err != nil {
		t.Fatalf("shim Del: %v", err)
	}
	if err := sh.Add(e.args("c2")); err != nil {
		t.Fatalf("shim Add: %v", err)
	}
	if want := strings.ReplaceAll(want, "/c1", "/c2"); got.String() != want {
		t.Errorf("shim printed %q, want %q", got.String(), want)
	}
	wantCalls := []string{"ADD ptp c1 eth0", "DEL ptp c1 eth0", "ADD ptp c1 eth0", "DEL ptp c1 eth0", "ADD ptp c2 eth0"}
	if got := e.exec.Seen(); !slices.Equal(got, wantCalls) {
		t.Errorf("exec calls = %q, want %q", got, wantCalls)
	}
}

// TestNotReady: before the caches sync, ADD is to be retried and STATUS
// reports the plugin unavailable, at once; DEL, CHECK and GC work from the
// journal.
func TestNotReady(t *testing.T) {
	tests := []struct {
		command  string
		wantCode uint // 0: success
		wantRun  []string
	}{
		{"ADD", types.ErrTryAgainLater, nil},
		{"STATUS", wire.CodeNotAvailable, nil},
		{"DEL", 0, []string{"DEL ptp c1 eth0"}},
		{"GC", 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.command, func(t *testing.T) {
			e := newEnv(t)
			e.serve(t, &Server{Settings: e.settings, Core: e.core, Timeout: e.timeout, Unsynced: func() []string { return []string{"network-attachment-definitions"} }})
			resp, err := wire.Forward(context.Background(), e.sock(), wire.NewRequest(tt.command, e.args("c1")))
			if err != nil {
				t.Fatalf("Forward: %v", err)
			}
			switch {
			case tt.wantCode == 0 && resp.Error != nil:
				t.Errorf("%s = %+v, want success", tt.command, resp.Error)
			case tt.wantCode != 0 && (resp.Error == nil || resp.Error.Code != tt.wantCode || !strings.Contains(resp.Error.Msg, "caches not synced yet: network-attachment-definitions")):
				t.Errorf("%s = %+v, want code %d naming the unsynced cache", tt.command, resp.Error, tt.wantCode)
			}
			if got := e.exec.Seen(); !slices.Equal(got, tt.wantRun) {
				t.Errorf("exec calls = %q, want %q", got, tt.wantRun)
			}
		})
	}
}

func TestBadRequests(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		wantCode uint
	}{
		{"unknown command", `{"command":"VERSION","containerID":"c1"}`, types.ErrInvalidEnvironmentVariables},
		{"no command", `{"containerID":"c1"}`, types.ErrInvalidEnvironmentVariables},
		{"not JSON", `ADD c1`, types.ErrDecodingFailure},
		{"sent by a shim braid started", `{"command":"ADD","containerID":"c1","netns":"/var/run/netns/c1","ifName":"eth0","stdin":"eyJuYW1lIjoiYiJ9","caller":"outer"}`, types.ErrInvalidNetworkConfig},
		{"container ID skel refuses", `{"command":"ADD","containerID":"../../etc","netns":"/var/run/netns/c1","ifName":"eth0","stdin":"eyJuYW1lIjoiYiJ9"}`, types.ErrInvalidEnvironmentVariables},
		{"interface name skel refuses", `{"command":"DEL","containerID":"c1","ifName":"a/b","stdin":"eyJuYW1lIjoiYiJ9"}`, types.ErrInvalidEnvironmentVariables},
		{"ADD without netns", `{"command":"ADD","containerID":"c1","ifName":"eth0","stdin":"eyJuYW1lIjoiYiJ9"}`, types.ErrInvalidEnvironmentVariables},
		{"relative netns", `{"command":"ADD","containerID":"c1","netns":"netns/c1","ifName":"eth0","stdin":"eyJuYW1lIjoiYiJ9"}`, types.ErrInvalidNetNS},
		{"netns with ..", `{"command":"CHECK","containerID":"c1","netns":"/var/run/netns/../../proc/1/ns/net","ifName":"eth0","stdin":"eyJuYW1lIjoiYiJ9"}`, types.ErrInvalidNetNS},
		{"network name skel refuses", `{"command":"GC","stdin":"eyJuYW1lIjoiYS9iIn0="}`, types.ErrInvalidNetworkConfig},
	}
	// The same requests framed (braid-shim) and over HTTP (a braid-shim from
	// before the framed protocol).
	send := map[string]func(t *testing.T, sock, body string) wire.Response{
		"framed": func(t *testing.T, sock, body string) wire.Response {
			conn, err := net.Dial("unix", sock)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = conn.Close() }()
			frame := binary.BigEndian.AppendUint32([]byte(wire.Magic), uint32(len(body)))
			if _, err := conn.Write(append(frame, body...)); err != nil {
				t.Fatal(err)
			}
			var head [4]byte
			if _, err := io.ReadFull(conn, head[:]); err != nil {
				t.Fatalf("no answer: %v", err)
			}
			var resp wire.Response
			if err := jsonDecode(io.LimitReader(conn, int64(binary.BigEndian.Uint32(head[:]))), &resp); err != nil {
				t.Fatalf("answer: %v", err)
			}
			return resp
		},
		"http": func(t *testing.T, sock, body string) wire.Response {
			hresp, err := socketClient(sock).Post("http://braid"+wire.Path, "application/json", strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = hresp.Body.Close() }()
			var resp wire.Response
			if err := jsonDecode(hresp.Body, &resp); err != nil || hresp.StatusCode != http.StatusOK {
				t.Fatalf("answer %s: %v", hresp.Status, err)
			}
			return resp
		},
	}
	for _, tt := range tests {
		for how, send := range send {
			t.Run(how+"/"+tt.name, func(t *testing.T) {
				e := newEnv(t)
				e.serve(t, &Server{Settings: e.settings, Core: e.core, Timeout: e.timeout})
				resp := send(t, e.sock(), tt.body)
				if resp.Error == nil || resp.Error.Code != tt.wantCode {
					t.Errorf("answer = %+v, want code %d", resp.Error, tt.wantCode)
				}
				if got := e.exec.Seen(); len(got) != 0 {
					t.Errorf("exec calls = %q, want none", got)
				}
			})
		}
	}
}

// TestGracefulShutdown: once ctx ends the socket is gone for new calls,
// and the ADD in flight still finishes and is answered.
func TestGracefulShutdown(t *testing.T) {
	e := newEnv(t)
	e.exec.Hold, e.exec.Entered = make(chan struct{}), make(chan testutil.ExecCall)
	sv := e.serve(t, &Server{Settings: e.settings, Core: e.core, Timeout: e.timeout})
	type answer struct {
		resp *wire.Response
		err  error
	}
	got := make(chan answer, 1)
	go func() {
		resp, err := wire.Forward(context.Background(), e.sock(), wire.NewRequest("ADD", e.args("c1")))
		got <- answer{resp, err}
	}()
	<-e.exec.Entered
	sv.stop()
	eventually(t, "the socket is gone", func() bool {
		_, err := os.Stat(e.sock())
		return err != nil
	})
	select {
	case <-sv.done:
		t.Fatalf("Serve returned %v with an ADD in flight", sv.err)
	default:
	}
	close(e.exec.Hold)
	a := <-got
	if a.err != nil || a.resp.Error != nil || !bytes.Contains(a.resp.Stdout, []byte(`"eth0"`)) {
		t.Fatalf("in-flight ADD = %+v, %v; want its result", a.resp, a.err)
	}
	<-sv.done
	if sv.err != nil {
		t.Errorf("Serve = %v, want nil after a graceful stop", sv.err)
	}
}

func TestProbes(t *testing.T) {
	var ready atomic.Bool
	s := &Server{Unsynced: func() []string {
		if ready.Load() {
			return nil
		}
		return []string{"pods on node n1", "network-attachment-definitions"}
	}}
	for _, h := range []http.Handler{s.OpsHandler(), s.Handler()} {
		if code := get(t, h, "/healthz"); code != http.StatusOK {
			t.Errorf("/healthz = %d, want 200", code)
		}
		ready.Store(false)
		if code := get(t, h, "/readyz"); code != http.StatusServiceUnavailable {
			t.Errorf("/readyz before sync = %d, want 503", code)
		}
		ready.Store(true)
		if code := get(t, h, "/readyz"); code != http.StatusOK {
			t.Errorf("/readyz after sync = %d, want 200", code)
		}
	}
}

func TestMetrics(t *testing.T) {
	e := newEnv(t)
	s := &Server{Settings: e.settings, Core: e.core, Timeout: e.timeout, Registry: prometheus.NewRegistry()}
	e.serve(t, s)
	for _, command := range []string{"ADD", "DEL"} {
		if _, err := wire.Forward(context.Background(), e.sock(), wire.NewRequest(command, e.args("c1"))); err != nil {
			t.Fatalf("Forward %s: %v", command, err)
		}
	}
	rec := httptest.NewRecorder()
	s.OpsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for _, want := range []string{
		`braid_requests_total{result="ok",verb="ADD"} 1`,
		`braid_requests_total{result="ok",verb="DEL"} 1`,
		`braid_request_duration_seconds_count{result="ok",verb="ADD"} 1`,
		`braid_requests_in_flight 0`,
		`braid_requests_waiting 0`,
	} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("/metrics lacks %q:\n%s", want, rec.Body)
		}
	}
}

func TestOpsEndpoints(t *testing.T) {
	tests := []struct {
		name string
		s    *Server
		path string
		want int
	}{
		{"no registry, no metrics", &Server{}, "/metrics", http.StatusNotFound},
		{"pprof off", &Server{}, "/debug/pprof/", http.StatusNotFound},
		{"pprof on", &Server{EnablePprof: true}, "/debug/pprof/", http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if code := get(t, tt.s.OpsHandler(), tt.path); code != tt.want {
				t.Errorf("GET %s = %d, want %d", tt.path, code, tt.want)
			}
		})
	}
}

func get(t *testing.T, h http.Handler, path string) int {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code
}

// podsAndNADs serves one pod and the NADs of a map, as braidd's caches do.
type podsAndNADs struct {
	pod  *corev1.Pod
	nads map[string]*nadv1.NetworkAttachmentDefinition
}

func (f *podsAndNADs) GetPod(_ context.Context, ns, name string) (*corev1.Pod, error) {
	if f.pod.Namespace == ns && f.pod.Name == name {
		return f.pod.DeepCopy(), nil
	}
	return nil, apierrors.NewNotFound(corev1.Resource("pods"), name)
}

func (f *podsAndNADs) GetNAD(_ context.Context, ns, name string) (*nadv1.NetworkAttachmentDefinition, error) {
	if n, ok := f.nads[ns+"/"+name]; ok {
		return n, nil
	}
	return nil, apierrors.NewNotFound(schema.GroupResource{Group: "k8s.cni.cncf.io", Resource: "network-attachment-definitions"}, name)
}

// TestSync: hot-plug's Sync runs the core on the container ADD attached,
// with the daemon's settings and API, and is counted: by result in the
// request metrics (verb HOTPLUG), by interface in braid_hotplug_interfaces_total.
func TestSync(t *testing.T) {
	e := newEnv(t)
	api := &podsAndNADs{
		pod: &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns1", Name: "web", UID: "uid-1"}},
		nads: map[string]*nadv1.NetworkAttachmentDefinition{"ns1/blue": {ObjectMeta: metav1.ObjectMeta{Namespace: "ns1", Name: "blue"},
			Spec: nadv1.NetworkAttachmentDefinitionSpec{Config: `{"cniVersion":"1.0.0","name":"blue","type":"bridge"}`}}},
	}
	e.core.API = &attacher.API{Pods: api, NADs: api}
	s := &Server{Settings: e.settings, Core: e.core, Timeout: e.timeout, Registry: prometheus.NewRegistry()}
	e.serve(t, s)
	if resp, err := wire.Forward(context.Background(), e.sock(), wire.NewRequest("ADD", e.args("c1"))); err != nil || resp.Error != nil {
		t.Fatalf("ADD: %v %+v", err, resp)
	}
	api.pod.Annotations = map[string]string{nadv1.NetworkAttachmentAnnot: "blue"}
	c, err := s.Sync(context.Background(), "c1")
	if err != nil || c == nil || len(c.Added) != 1 {
		t.Fatalf("Sync = %+v, %v; want blue added", c, err)
	}
	if got, want := e.exec.Seen("ADD"), []string{"ADD ptp c1 eth0", "ADD bridge c1 net1"}; !slices.Equal(got, want) {
		t.Errorf("ADD calls %q, want %q", got, want)
	}
	s.Settings = func() (*netconf.NetConf, error) { return nil, errors.New("no settings") }
	if _, err := s.Sync(context.Background(), "c1"); err == nil {
		t.Error("Sync without settings succeeded")
	}
	rec := httptest.NewRecorder()
	s.OpsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for _, want := range []string{
		`braid_requests_total{result="ok",verb="HOTPLUG"} 1`,
		`braid_requests_total{result="error",verb="HOTPLUG"} 1`,
		`braid_hotplug_interfaces_total{verb="add"} 1`,
		`braid_hotplug_interfaces_total{verb="remove"} 0`,
	} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("/metrics lacks %q:\n%s", want, rec.Body)
		}
	}
}
