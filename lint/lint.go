package lint

import (
	"context"
	"fmt"
	"io"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/braid-cni/braid/delegate"
	"github.com/braid-cni/braid/netconf"
)

// Input is one linted file.
type Input struct {
	Name string // as printed in findings
	Data []byte
}

// Options tune a run.
type Options struct {
	// BinDirs, when set, are searched for every plugin type a NAD uses
	// (and its IPAM plugin), and each binary is asked which spec versions
	// it supports.
	BinDirs []string
	// Exec runs the VERSION calls and finds binaries; nil runs the real
	// binaries.
	Exec invoke.Exec
	// MaxNetworksPerPod is braid's maxNetworksPerPod on the nodes; 0:
	// braid's default.
	MaxNetworksPerPod int
}

func (o Options) networkLimit() int {
	if o.MaxNetworksPerPod <= 0 {
		return netconf.DefaultMaxNetworksPerPod
	}
	return o.MaxNetworksPerPod
}

// Lint checks every object of inputs and returns the findings, ordered by
// input, then document, then check.
func Lint(ctx context.Context, inputs []Input, opts Options) []Finding {
	l := &linter{opts: opts, nads: map[string]*nadInfo{}, versions: map[string]versionAnswer{}}
	if l.opts.Exec == nil {
		l.opts.Exec = &invoke.DefaultExec{RawExec: &invoke.RawExec{Stderr: io.Discard}}
	}
	var objs []object
	for i, in := range inputs {
		o, fs := documents(i, in.Name, in.Data)
		objs = append(objs, o...)
		l.findings = append(l.findings, fs...)
	}
	// NADs first, so that pods can refer to a NAD in any linted file.
	for _, o := range objs {
		if isNAD(o) {
			l.nad(ctx, o)
		}
	}
	for _, o := range objs {
		l.workload(o)
	}
	sortFindings(l.findings)
	return l.findings
}

// linter holds one run's state.
type linter struct {
	opts     Options
	nads     map[string]*nadInfo // by "namespace/name"
	versions map[string]versionAnswer
	findings []Finding
	seq      int
	errors   int // error findings so far
}

// nadInfo is what pods need to know about a linted NAD.
type nadInfo struct {
	delegate *delegate.Delegate // nil when the config is empty or broken
	resource string             // the device resource of a device-backed network
}

// versionAnswer caches one binary's VERSION answer.
type versionAnswer struct {
	info version.PluginInfo
	err  error
}

// reporter adds findings about one object.
type reporter struct {
	l    *linter
	obj  object
	kind string
	id   string
}

func (l *linter) reporter(o object, namespace, name string) *reporter {
	return &reporter{l: l, obj: o, kind: o.meta.Kind, id: namespace + "/" + name}
}

func (r *reporter) add(field string, sev Severity, format string, args ...any) {
	r.l.seq++
	if sev == Error {
		r.l.errors++
	}
	r.l.findings = append(r.l.findings, Finding{
		File: r.obj.file, Kind: r.kind, Object: r.id, Field: field, Severity: sev,
		Message:   fmt.Sprintf(format, args...),
		fileIndex: r.obj.fileIndex, doc: r.obj.doc, seq: r.l.seq,
	})
}

// undecodable reports an object whose fields do not have their types.
func (l *linter) undecodable(o object, err error) {
	r := &reporter{l: l, obj: o, kind: o.meta.Kind, id: fmt.Sprintf("(document #%d)", o.doc)}
	r.add("-", Error, "cannot decode: %v", err)
}

// namespaceOr returns ns, or "default" as kubectl would use without -n.
func namespaceOr(ns string) string {
	if ns == "" {
		return "default"
	}
	return ns
}
