package wire

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
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/utils"
)

const (
	// DefaultSocketDir is where braidd listens unless the config says
	// otherwise.
	DefaultSocketDir = "/run/braid"
	// VerbTimeout is the deadline of one verb, at either end.
	VerbTimeout = 2 * time.Minute
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

// CodeNotAvailable is the spec's STATUS code 50: the plugin cannot serve
// ADD. The types package has no name for it.
const CodeNotAvailable uint = 50

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
	// Caller is braid's mark (package caller) in the client's environment:
	// braid, or a plugin braid ran, started it. braidd refuses such a
	// request; braid-shim refuses to send one in the first place.
	Caller string `json:"caller,omitempty"`
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

// Validate checks what skel checks before a plugin runs, which braidd
// must check itself: the variables the command requires, a container ID
// and interface name skel would accept, a network name, and a netns that
// is an absolute, clean path.
func (r *Request) Validate() *types.Error {
	need := map[string][]string{
		"ADD":   {"CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"},
		"CHECK": {"CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"},
		"DEL":   {"CNI_CONTAINERID", "CNI_IFNAME"},
	}
	values := map[string]string{"CNI_CONTAINERID": r.ContainerID, "CNI_NETNS": r.Netns, "CNI_IFNAME": r.IfName}
	for _, v := range need[r.Command] {
		if values[v] == "" {
			return types.NewError(types.ErrInvalidEnvironmentVariables, fmt.Sprintf("braid daemon: %s of container %q: %s is required", r.Command, r.ContainerID, v), "")
		}
	}
	if r.ContainerID != "" {
		if err := utils.ValidateContainerID(r.ContainerID); err != nil {
			return err
		}
	}
	if r.IfName != "" {
		if err := utils.ValidateInterfaceName(r.IfName); err != nil {
			return err
		}
	}
	if r.Netns != "" && (!filepath.IsAbs(r.Netns) || filepath.Clean(r.Netns) != r.Netns) {
		return types.NewError(types.ErrInvalidNetNS, fmt.Sprintf("braid daemon: netns %q is not an absolute, clean path", r.Netns), "")
	}
	var conf struct {
		Name string `json:"name"`
	}
	if err := json.Unmarshal(r.Stdin, &conf); err != nil {
		return types.NewError(types.ErrDecodingFailure, "braid daemon: decode the network config", err.Error())
	}
	if conf.Name == "" {
		return types.NewError(types.ErrInvalidNetworkConfig, "braid daemon: the network config has no name", "")
	}
	return utils.ValidateNetworkName(conf.Name)
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

// what names the request in errors: the verb, and its container when it
// has one (STATUS and GC have none).
func (r *Request) what() string {
	if r.ContainerID == "" {
		return r.Command
	}
	return r.Command + " of container " + r.ContainerID
}

// Forward sends req to the daemon on socketPath and returns its answer. A
// CNI error of the verb comes back in the Response; the returned error means
// the daemon did not answer (no socket, refused, cut off, ctx done) or did
// not speak this protocol, and the caller decides what to do about it. A
// missing socket file and a refused connection fail at once.
func Forward(ctx context.Context, socketPath string, req *Request) (*Response, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encode %s request: %w", req.what(), err)
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("%s request: %w", req.what(), err)
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
		return nil, fmt.Errorf("%s: %w", req.what(), err)
	}
	defer func() { _ = resp.Body.Close() }()
	return decodeResponse(req, resp)
}

func decodeResponse(req *Request, resp *http.Response) (*Response, error) {
	body := io.LimitReader(resp.Body, MaxResponseBytes)
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(body, 1024))
		return nil, fmt.Errorf("%s: daemon answered %s: %s", req.what(), resp.Status, strings.TrimSpace(string(msg)))
	}
	var out Response
	if err := json.NewDecoder(body).Decode(&out); err != nil {
		return nil, fmt.Errorf("%s: decode the daemon's answer: %w", req.what(), err)
	}
	return &out, nil
}
