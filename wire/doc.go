// Package wire is the protocol between braid-shim and braidd (thick mode):
// the request that carries one CNI call (the verb, the CNI_* environment and
// stdin), the daemon's answer, and the client that sends one over the
// daemon's unix socket. Both ends import it; it links no Kubernetes client,
// so the shim stays small.
//
// The protocol is HTTP/1.1 on the unix socket <daemonSocketDir>/braid.sock:
// the shim POSTs a JSON Request to /cni, and the daemon answers 200 with a
// JSON Response: the bytes the verb printed and the CNI error it returned,
// if any. Any other status means the two do not speak the same protocol.
package wire
