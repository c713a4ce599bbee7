package wire

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"

	"github.com/braid-cni/braid/internal/testutil"
)

func TestRequestCarriesCmdArgs(t *testing.T) {
	args := &skel.CmdArgs{
		ContainerID: "c1",
		Netns:       "/var/run/netns/c1",
		IfName:      "eth0",
		Args:        "K8S_POD_NAMESPACE=ns1;K8S_POD_NAME=web",
		Path:        "/opt/cni/bin",
		StdinData:   []byte(`{"cniVersion":"1.0.0"}`),
	}
	data, err := json.Marshal(NewRequest("ADD", args))
	if err != nil {
		t.Fatal(err)
	}
	var back Request
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if back.Command != "ADD" {
		t.Errorf("Command = %q, want ADD", back.Command)
	}
	if got := back.CmdArgs(); !reflect.DeepEqual(got, args) {
		t.Errorf("CmdArgs() = %+v, want %+v", got, args)
	}
}

// serve answers on a unix socket in a temp dir with h and returns the socket.
func serve(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	sock := SocketPath(t.TempDir())
	testutil.ServeUnix(t, sock, h)
	return sock
}

func TestForward(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
		want    *Response
		wantErr string
	}{
		{
			name: "result",
			handler: func(w http.ResponseWriter, r *http.Request) {
				var req Request
				if r.Method != http.MethodPost || r.URL.Path != Path || json.NewDecoder(r.Body).Decode(&req) != nil || req.ContainerID != "c1" {
					http.Error(w, "unexpected request", http.StatusBadRequest)
					return
				}
				_ = json.NewEncoder(w).Encode(Response{Stdout: []byte(`{"cniVersion":"1.0.0"}`)})
			},
			want: &Response{Stdout: []byte(`{"cniVersion":"1.0.0"}`)},
		},
		{
			name: "CNI error kept",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				_ = json.NewEncoder(w).Encode(Response{Error: types.NewError(7, "bad config", "key x")})
			},
			want: &Response{Error: types.NewError(7, "bad config", "key x")},
		},
		{
			name: "other protocol",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				http.Error(w, "no such thing", http.StatusNotFound)
			},
			wantErr: "404 Not Found: no such thing",
		},
		{
			name: "not JSON",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				_, _ = w.Write([]byte("hello"))
			},
			wantErr: "decode the daemon's answer",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sock := serve(t, tt.handler)
			got, err := Forward(context.Background(), sock, &Request{Command: "ADD", ContainerID: "c1"})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Forward = %+v, %v; want error containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Forward: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Forward = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestForwardNoDaemon(t *testing.T) {
	sock := filepath.Join(t.TempDir(), SocketName)
	_, err := Forward(context.Background(), sock, &Request{Command: "DEL", ContainerID: "c1"})
	if !errors.Is(err, syscall.ENOENT) {
		t.Errorf("Forward = %v, want ENOENT", err)
	}
	if err != nil && !strings.Contains(err.Error(), sock) {
		t.Errorf("error %q does not name the socket %s", err, sock)
	}
}

// TestRequestValidate: braidd checks what skel would have checked.
func TestRequestValidate(t *testing.T) {
	good := func() *Request {
		return &Request{Command: "ADD", ContainerID: "c1", Netns: "/var/run/netns/c1", IfName: "eth0", Stdin: []byte(`{"name":"braid-net"}`)}
	}
	tests := []struct {
		name     string
		change   func(r *Request)
		wantCode uint // 0: valid
	}{
		{"valid ADD", func(*Request) {}, 0},
		{"DEL without netns", func(r *Request) { r.Command, r.Netns = "DEL", "" }, 0},
		{"GC without container", func(r *Request) { r.Command, r.ContainerID, r.IfName, r.Netns = "GC", "", "", "" }, 0},
		{"proc netns", func(r *Request) { r.Netns = "/proc/4242/ns/net" }, 0},
		{"ADD without container", func(r *Request) { r.ContainerID = "" }, types.ErrInvalidEnvironmentVariables},
		{"ADD without netns", func(r *Request) { r.Netns = "" }, types.ErrInvalidEnvironmentVariables},
		{"CHECK without ifname", func(r *Request) { r.Command, r.IfName = "CHECK", "" }, types.ErrInvalidEnvironmentVariables},
		{"container ID with a slash", func(r *Request) { r.ContainerID = "a/../b" }, types.ErrInvalidEnvironmentVariables},
		{"interface name too long", func(r *Request) { r.IfName = "abcdefghijklmnop" }, types.ErrInvalidEnvironmentVariables},
		{"interface name dot", func(r *Request) { r.IfName = ".." }, types.ErrInvalidEnvironmentVariables},
		{"relative netns", func(r *Request) { r.Netns = "run/netns/c1" }, types.ErrInvalidNetNS},
		{"netns not clean", func(r *Request) { r.Netns = "/var/run/netns/../../../etc/passwd" }, types.ErrInvalidNetNS},
		{"no network name", func(r *Request) { r.Stdin = []byte(`{}`) }, types.ErrInvalidNetworkConfig},
		{"network name with a slash", func(r *Request) { r.Stdin = []byte(`{"name":"a/b"}`) }, types.ErrInvalidNetworkConfig},
		{"config not JSON", func(r *Request) { r.Stdin = []byte(`{`) }, types.ErrDecodingFailure},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := good()
			tt.change(r)
			err := r.Validate()
			switch {
			case tt.wantCode == 0 && err != nil:
				t.Errorf("Validate = %+v, want valid", err)
			case tt.wantCode != 0 && (err == nil || err.Code != tt.wantCode):
				t.Errorf("Validate = %+v, want code %d", err, tt.wantCode)
			}
		})
	}
}
