package lint

import (
	"context"
	"slices"
	"strings"

	"github.com/containernetworking/cni/pkg/invoke"
)

// checkBinaries finds each binary in the bin dirs and asks it, with a
// VERSION call, whether it supports cniVersion.
func (l *linter) checkBinaries(ctx context.Context, r *reporter, cniVersion string, bins []binary) {
	dirs := strings.Join(l.opts.BinDirs, ":")
	for _, b := range bins {
		path, err := l.opts.Exec.FindInPath(b.typ, l.opts.BinDirs)
		if err != nil {
			r.add(b.field, Error, "plugin %q: no binary in %s", b.typ, dirs)
			continue
		}
		answer, ok := l.versions[path]
		if !ok {
			answer.info, answer.err = invoke.GetVersionInfo(ctx, path, l.opts.Exec)
			l.versions[path] = answer
		}
		if answer.err != nil {
			r.add(b.field, Error, "plugin %q (%s): VERSION failed: %v", b.typ, path, answer.err)
			continue
		}
		if cniVersion == "" {
			continue // reported on cniVersion already
		}
		if supported := answer.info.SupportedVersions(); !slices.Contains(supported, cniVersion) {
			r.add(b.field, Error, "plugin %q (%s) does not support cniVersion %q (it supports %s)", b.typ, path, cniVersion, strings.Join(supported, ", "))
		}
	}
}
