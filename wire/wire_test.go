package wire

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
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

// serve answers each connection on a unix socket in a temp dir with reply,
// given the request read, and returns the socket.
func serve(t *testing.T, reply func(conn net.Conn, req *Request)) string {
	t.Helper()
	sock := SocketPath(t.TempDir())
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				req, err := ReadRequest(conn, 1<<20)
				if err != nil {
					_, _ = conn.Write([]byte("unexpected request: " + err.Error()))
					return
				}
				reply(conn, req)
			}()
		}
	}()
	return sock
}

func TestForward(t *testing.T) {
	tests := []struct {
		name    string
		reply   func(conn net.Conn, req *Request)
		want    *Response
		wantErr string
	}{
		{
			name: "result",
			reply: func(conn net.Conn, req *Request) {
				if req.Command != "ADD" || req.ContainerID != "c1" || string(req.Stdin) != `{"name":"n"}` {
					return
				}
				_ = WriteResponse(conn, &Response{Stdout: []byte(`{"cniVersion":"1.0.0"}`)})
			},
			want: &Response{Stdout: []byte(`{"cniVersion":"1.0.0"}`)},
		},
		{
			name: "CNI error kept",
			reply: func(conn net.Conn, _ *Request) {
				_ = WriteResponse(conn, &Response{Error: types.NewError(7, "bad config", "key x")})
			},
			want: &Response{Error: types.NewError(7, "bad config", "key x")},
		},
		{
			name: "an HTTP-only braidd",
			reply: func(conn net.Conn, _ *Request) {
				_, _ = conn.Write([]byte("HTTP/1.1 400 Bad Request\r\n\r\n"))
			},
			wantErr: "answered in HTTP",
		},
		{
			name: "not JSON",
			reply: func(conn net.Conn, _ *Request) {
				_, _ = conn.Write([]byte{0, 0, 0, 5, 'h', 'e', 'l', 'l', 'o'})
			},
			wantErr: "decode",
		},
		{
			name: "too long",
			reply: func(conn net.Conn, _ *Request) {
				_, _ = conn.Write([]byte{0x7f, 0, 0, 0})
			},
			wantErr: "more than",
		},
		{
			name:    "hung up",
			reply:   func(net.Conn, *Request) {},
			wantErr: "EOF",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sock := serve(t, tt.reply)
			got, err := Forward(context.Background(), sock, &Request{Command: "ADD", ContainerID: "c1", Stdin: []byte(`{"name":"n"}`)})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), sock) {
					t.Fatalf("Forward = %+v, %v; want error containing %q and naming the socket", got, err, tt.wantErr)
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

// TestForwardGivesUp: a daemon that does not answer is left when the
// context ends, and it sees the connection close.
func TestForwardGivesUp(t *testing.T) {
	closed := make(chan error, 1)
	sock := serve(t, func(conn net.Conn, _ *Request) {
		_, err := conn.Read(make([]byte, 1))
		closed <- err
	})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := Forward(ctx, sock, &Request{Command: "ADD", ContainerID: "c1"})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Forward = %v, want the deadline", err)
	}
	select {
	case err := <-closed:
		if !errors.Is(err, io.EOF) {
			t.Errorf("the daemon read %v, want EOF", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("the daemon never saw the connection close")
	}
}

// TestReadRequest: a request is Magic and one frame; anything else is
// refused.
func TestReadRequest(t *testing.T) {
	var buf bytes.Buffer
	req := &Request{Command: "DEL", ContainerID: "c1", Stdin: []byte(`{}`)}
	if err := WriteRequest(&buf, req); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(buf.String(), Magic) {
		t.Fatalf("request %q does not start with %q", buf.String(), Magic)
	}
	whole := buf.String()
	got, err := ReadRequest(strings.NewReader(whole), 1<<20)
	if err != nil || !reflect.DeepEqual(got, req) {
		t.Errorf("ReadRequest = %+v, %v; want %+v", got, err, req)
	}
	for name, in := range map[string]string{
		"HTTP":      "POST /cni HTTP/1.1\r\n",
		"cut short": whole[:len(whole)-1],
		"too long":  whole,
	} {
		max := 1 << 20
		if name == "too long" {
			max = 3
		}
		if got, err := ReadRequest(strings.NewReader(in), max); err == nil {
			t.Errorf("%s: ReadRequest = %+v, want an error", name, got)
		}
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
