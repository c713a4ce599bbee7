package shim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
)

const (
	// SocketName is the daemon's socket in daemonSocketDir.
	SocketName = "braid.sock"
	// Path is where the daemon serves CNI calls.
	Path = "/cni"
	// url is what the shim asks for; the host is a placeholder, since the
	// connection always goes to the socket.
	url = "http://braid" + Path
	// MaxResponseBytes bounds the daemon's answer the shim reads.
	MaxResponseBytes = 16 << 20
)

// SocketPath returns the daemon's socket in dir.
func SocketPath(dir string) string { return filepath.Join(dir, SocketName) }

// Request is one CNI call: the verb (CNI_COMMAND) and what skel read from
// the environment and stdin.
type Request struct {
	Command     string `json:"command"`
	ContainerID string `json:"containerID"`
	Netns       string `json:"netns"`
	IfName      string `json:"ifName"`
	Args        string `json:"args"`
	Path        string `json:"path"`
	Stdin       []byte `json:"stdin"`
}

// Response is the daemon's answer: what the verb printed and the CNI error
// it returned (nil on success).
type Response struct {
	Stdout []byte       `json:"stdout,omitempty"`
	Error  *types.Error `json:"error,omitempty"`
}

// NewRequest builds the request for command from skel's arguments.
func NewRequest(command string, args *skel.CmdArgs) *Request {
	return &Request{
		Command:     command,
		ContainerID: args.ContainerID,
		Netns:       args.Netns,
		IfName:      args.IfName,
		Args:        args.Args,
		Path:        args.Path,
		Stdin:       args.StdinData,
	}
}

// CmdArgs returns the request as skel's arguments.
func (r *Request) CmdArgs() *skel.CmdArgs {
	return &skel.CmdArgs{
		ContainerID: r.ContainerID,
		Netns:       r.Netns,
		IfName:      r.IfName,
		Args:        r.Args,
		Path:        r.Path,
		StdinData:   r.Stdin,
	}
}

// Forward sends req to the daemon on socketPath and returns its answer. A
// CNI error of the verb comes back in the Response; the returned error means
// the daemon did not answer (no socket, refused, cut off, ctx done) or did
// not speak this protocol, and the caller decides what to do about it. A
// missing socket file and a refused connection fail at once.
func Forward(ctx context.Context, socketPath string, req *Request) (*Response, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encode %s request of container %s: %w", req.Command, req.ContainerID, err)
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("%s request of container %s: %w", req.Command, req.ContainerID, err)
	}
	hreq.Header.Set("Content-Type", "application/json")
	transport := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socketPath)
		},
		// One call per shim process: nothing to keep alive.
		DisableKeepAlives: true,
	}
	defer transport.CloseIdleConnections()
	resp, err := (&http.Client{Transport: transport}).Do(hreq)
	if err != nil {
		return nil, fmt.Errorf("%s of container %s: %w", req.Command, req.ContainerID, err)
	}
	defer func() { _ = resp.Body.Close() }()
	return decodeResponse(req, resp)
}

func decodeResponse(req *Request, resp *http.Response) (*Response, error) {
	body := io.LimitReader(resp.Body, MaxResponseBytes)
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(body, 1024))
		return nil, fmt.Errorf("%s of container %s: daemon answered %s: %s", req.Command, req.ContainerID, resp.Status, strings.TrimSpace(string(msg)))
	}
	var out Response
	if err := json.NewDecoder(body).Decode(&out); err != nil {
		return nil, fmt.Errorf("%s of container %s: decode the daemon's answer: %w", req.Command, req.ContainerID, err)
	}
	return &out, nil
}
