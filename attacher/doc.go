// Package attacher is braid's core: the Attacher's verbs Add, Del, Check,
// Status and GC each take a context and a Request, and every caller (the
// thin plugin's skel adapter, braidd's server, braidctl doctor) reaches
// them only here. ADD reads as its steps in add.go: take the container's
// lock, wait for the cluster network, build the plan (a refused plan leaves
// a Warning event), journal it, invoke each attachment, apply the default
// routes, journal and merge the results, record network-status and events;
// any failure rolls back in reverse order. DEL works from the journal,
// falling back to a plan rebuilt from the API and then to the cluster
// network alone, and goes on past failures; CHECK, STATUS and GC work from
// the same plans. Sync is hot-plug's verb (sync.go): it brings a running
// container's attachments in line with its pod's networks annotation,
// journaled first and rolled back on failure, under the same lock; braidd's
// hot-plug controller (braidd/hotplug) calls it through braidd's server. Every side effect comes in through a small interface
// (Invoker, Journal, Recorder, ClaimWriter, Routes), so the tests run this
// same code; New wires the real ones from braid's config and the caller's
// Options. The core knows nothing of skel, HTTP or environment variables.
package attacher
