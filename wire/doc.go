// Package wire is the protocol between braid-shim and braidd (thick mode):
// the request that carries one CNI call (the verb, the CNI_* environment and
// stdin), the daemon's answer, and the client that sends one over the
// daemon's unix socket. Both ends import it. It links neither a Kubernetes
// client nor net/http, so that the shim, exec'd by the runtime for every
// call, starts in little more than a plugin's time.
//
// On the unix socket <daemonSocketDir>/braid.sock the shim writes Magic,
// then one frame: the JSON Request's length (4 bytes, big-endian) and the
// JSON. The daemon answers one frame holding the JSON Response: the bytes
// the verb printed and the CNI error it returned, if any. The shim keeps
// the connection open until then; the daemon takes its closing for the
// runtime giving up. braidd also answers the protocol of earlier shims on
// the same socket (HTTP/1.1, POST Path with the same JSON), told apart by
// the first bytes.
package wire
