package wire

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"path/filepath"
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
	// Path is where the daemon serves CNI calls over HTTP, the protocol of
	// braid-shims before the framed one: a node may run such a shim for a
	// moment while a new braidd installs its own.
	Path = "/cni"
	// Magic opens every framed call; no HTTP request starts with it, so the
	// daemon tells the two apart on one socket.
	Magic = "BRAID01\n"
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
// missing socket file and a refused connection fail at once. The connection
// stays open until the answer: the daemon takes its closing for the caller
// giving up.
func Forward(ctx context.Context, socketPath string, req *Request) (*Response, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", socketPath)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", req.what(), err)
	}
	defer func() { _ = conn.Close() }()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	// A context cancelled before its deadline unblocks the reads and writes.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	resp, err := exchange(conn, req)
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			// Only ctx sets the connection's deadlines; the timer of its
			// own deadline may fire a moment after the connection's.
			<-ctx.Done()
		}
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%w)", ctx.Err(), err)
		}
		return nil, fmt.Errorf("%s on %s: %w", req.what(), socketPath, err)
	}
	return resp, nil
}

// exchange writes req and reads the answer on conn.
func exchange(conn io.ReadWriter, req *Request) (*Response, error) {
	if err := WriteRequest(conn, req); err != nil {
		return nil, err
	}
	var resp Response
	if err := readFrame(conn, MaxResponseBytes, &resp); err != nil {
		return nil, fmt.Errorf("read the daemon's answer: %w", err)
	}
	return &resp, nil
}

// WriteRequest writes req as one framed call: Magic, then the frame.
func WriteRequest(w io.Writer, req *Request) error {
	body, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("encode %s request: %w", req.what(), err)
	}
	return writeFrame(w, []byte(Magic), body)
}

// ReadRequest reads one framed call, Magic first, of at most maxBytes of
// JSON.
func ReadRequest(r io.Reader, maxBytes int) (*Request, error) {
	magic := make([]byte, len(Magic))
	if _, err := io.ReadFull(r, magic); err != nil {
		return nil, fmt.Errorf("read request: %w", err)
	}
	if string(magic) != Magic {
		return nil, fmt.Errorf("read request: starts with %q, not %q", magic, Magic)
	}
	var req Request
	if err := readFrame(r, maxBytes, &req); err != nil {
		return nil, fmt.Errorf("read request: %w", err)
	}
	return &req, nil
}

// WriteResponse writes the daemon's answer as one frame.
func WriteResponse(w io.Writer, resp *Response) error {
	body, err := json.Marshal(resp)
	if err != nil {
		return fmt.Errorf("encode answer: %w", err)
	}
	return writeFrame(w, nil, body)
}

// writeFrame writes prefix, body's length (4 bytes, big-endian) and body in
// one write.
func writeFrame(w io.Writer, prefix, body []byte) error {
	if len(body) > math.MaxUint32 {
		return fmt.Errorf("frame of %d bytes is too long", len(body))
	}
	buf := make([]byte, 0, len(prefix)+4+len(body))
	buf = append(buf, prefix...)
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(body)))
	buf = append(buf, body...)
	_, err := w.Write(buf)
	return err
}

// readFrame reads one frame of at most maxBytes and decodes its JSON into v.
// An HTTP answer instead (a braidd older than the framed protocol answers
// it 400) is named as such.
func readFrame(r io.Reader, maxBytes int, v any) error {
	var head [4]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return err
	}
	if string(head[:]) == "HTTP" {
		return errors.New("the daemon answered in HTTP: a braidd older than this braid-shim")
	}
	n := binary.BigEndian.Uint32(head[:])
	if uint64(n) > uint64(maxBytes) {
		return fmt.Errorf("frame of %d bytes, more than %d", n, maxBytes)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return err
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	return nil
}
