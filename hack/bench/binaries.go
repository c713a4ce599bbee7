package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// binaries are one source tree's braid programs: braid and braid-shim in
// dir, where libcni finds them by type, and braidd.
type binaries struct {
	dir    string
	braidd string
}

// newBinaries places the programs under dir: braid and braid-shim in
// dir/bin, braidd in dir.
func newBinaries(dir string) binaries {
	return binaries{dir: filepath.Join(dir, "bin"), braidd: filepath.Join(dir, "braidd")}
}

// build compiles braid, braid-shim and braidd of the source tree src,
// static as `make build` and the image build them (cgo would link them
// against libc, and every exec would pay the dynamic loader), with the go
// toolchain GOTOOLCHAIN selects (from the process environment if toolchain
// is empty).
func (b binaries) build(ctx context.Context, src, toolchain string) error {
	env := []string{"CGO_ENABLED=0"}
	if toolchain != "" {
		env = append(env, "GOTOOLCHAIN="+toolchain)
	}
	for pkg, out := range map[string]string{
		"./cmd/braid":      filepath.Join(b.dir, "braid"),
		"./cmd/braid-shim": filepath.Join(b.dir, "braid-shim"),
		"./cmd/braidd":     b.braidd,
	} {
		if err := goBuild(ctx, src, pkg, out, env...); err != nil {
			return err
		}
	}
	return nil
}

// buildNoop compiles the do-nothing meta-plugin (./hack/bench/noop of src)
// next to braid, static as braid is.
func (b binaries) buildNoop(ctx context.Context, src string) error {
	return goBuild(ctx, src, "./hack/bench/noop", filepath.Join(b.dir, noopType), "CGO_ENABLED=0")
}

// goBuild builds package pkg of the source tree src into out, with env
// added to the process environment.
func goBuild(ctx context.Context, src, pkg, out string, env ...string) error {
	build := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	build.Dir, build.Stdout, build.Stderr = src, os.Stderr, os.Stderr
	build.Env = append(os.Environ(), env...)
	if err := build.Run(); err != nil {
		return fmt.Errorf("build %s in %s: %w", pkg, src, err)
	}
	return nil
}

// buildBaseline builds the braid programs of git revision rev of the
// repository into the work directory's base/, for the @base modes: it
// extracts rev's tree (git archive) next to them, builds it with the go
// toolchain that built this tree's and removes the tree.
func (e *env) buildBaseline(ctx context.Context, rev string) error {
	out, err := exec.CommandContext(ctx, "git", "-C", e.root, "rev-parse", "--verify", "--short", rev+"^{commit}").Output()
	if err != nil {
		return fmt.Errorf("baseline %q: not a commit of %s: %w", rev, e.root, err)
	}
	commit := strings.TrimSpace(string(out))
	goEnv := exec.CommandContext(ctx, "go", "env", "GOVERSION")
	goEnv.Dir = e.root
	if out, err = goEnv.Output(); err != nil {
		return fmt.Errorf("baseline %s: go version of %s: %w", commit, e.root, err)
	}
	toolchain := strings.TrimSpace(string(out))
	src := filepath.Join(e.work, "base-src")
	defer func() { _ = os.RemoveAll(src) }()
	if err := os.MkdirAll(src, 0o755); err != nil {
		return fmt.Errorf("baseline %s: %w", commit, err)
	}
	tarball := src + ".tar"
	defer func() { _ = os.Remove(tarball) }()
	for _, args := range [][]string{
		{"git", "-C", e.root, "archive", "--format=tar", "-o", tarball, commit},
		{"tar", "-x", "-f", tarball, "-C", src},
	} {
		cmd := exec.CommandContext(ctx, args[0], args[1:]...)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("baseline %s: %s: %w", commit, strings.Join(args, " "), err)
		}
	}
	base := newBinaries(filepath.Join(e.work, "base"))
	if err := base.build(ctx, src, toolchain); err != nil {
		return fmt.Errorf("baseline %s: %w", commit, err)
	}
	e.base, e.baseRev = base, commit
	return nil
}
