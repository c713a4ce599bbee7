// Package plan decides what braid attaches to a pod, as data.
//
// A Plan is the ordered list of attachments for one container: per interface
// the network, the exact delegate config bytes (after cni-args injection),
// the capability args and the default-route request. It also holds the
// pod's default-route requests, computed and checked against each other
// once, by Build, so ADD applies what `braidctl explain` prints. Build reads
// the pod, NADs and files and touches no network, so ADD, DEL, CHECK, GC,
// the daemon and `braidctl explain` all act on the same decision. A Plan is
// also what the journal keeps on disk, which is why it carries a version.
package plan
