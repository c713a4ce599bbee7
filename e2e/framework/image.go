package framework

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"
)

// BuildImage writes a single-layer image as a docker-archive tarball (the
// format of `docker save`, which `ctr images import` reads) into dir and
// returns its path. files maps absolute paths in the image to files on the
// host, whose permission bits are kept; entrypoint is the image's
// Entrypoint. The image is for the host's architecture, owned by root and
// timestamped at the epoch, so the same inputs give the same image ID.
func BuildImage(dir, ref string, files map[string]string, entrypoint []string) (string, error) {
	layer, err := imageLayer(files)
	if err != nil {
		return "", fmt.Errorf("build image %s: %w", ref, err)
	}
	layerDigest := sha256.Sum256(layer)
	layerPath := hex.EncodeToString(layerDigest[:]) + "/layer.tar"
	config, err := json.Marshal(map[string]any{
		"architecture": runtime.GOARCH,
		"os":           "linux",
		"created":      time.Unix(0, 0).UTC(),
		"config": map[string]any{
			"Entrypoint": entrypoint,
			"Env":        []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
		},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{"sha256:" + hex.EncodeToString(layerDigest[:])}},
	})
	if err != nil {
		return "", fmt.Errorf("build image %s: %w", ref, err)
	}
	configDigest := sha256.Sum256(config)
	configPath := hex.EncodeToString(configDigest[:]) + ".json"
	manifest, err := json.Marshal([]map[string]any{{"Config": configPath, "RepoTags": []string{ref}, "Layers": []string{layerPath}}})
	if err != nil {
		return "", fmt.Errorf("build image %s: %w", ref, err)
	}
	out := filepath.Join(dir, strings.NewReplacer("/", "_", ":", "_").Replace(ref)+".tar")
	err = writeTar(out, []tarEntry{
		{name: path.Dir(layerPath) + "/", mode: 0o755},
		{name: layerPath, mode: 0o644, data: layer},
		{name: configPath, mode: 0o644, data: config},
		{name: "manifest.json", mode: 0o644, data: manifest},
	})
	if err != nil {
		return "", fmt.Errorf("build image %s: %w", ref, err)
	}
	return out, nil
}

// imageLayer returns an uncompressed layer tar holding files and their
// parent directories.
func imageLayer(files map[string]string) ([]byte, error) {
	var entries []tarEntry
	dirs := map[string]bool{}
	names := make([]string, 0, len(files))
	for name := range files {
		if !path.IsAbs(name) || path.Clean(name) == "/" {
			return nil, fmt.Errorf("image path %q is not an absolute file path", name)
		}
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		var parents []string
		for d := path.Dir(path.Clean(name)); d != "/" && !dirs[d]; d = path.Dir(d) {
			dirs[d] = true
			parents = append(parents, d)
		}
		for i := len(parents) - 1; i >= 0; i-- {
			entries = append(entries, tarEntry{name: parents[i][1:] + "/", mode: 0o755})
		}
		host := files[name]
		info, err := os.Stat(host)
		if err != nil {
			return nil, err
		}
		data, err := os.ReadFile(host)
		if err != nil {
			return nil, err
		}
		entries = append(entries, tarEntry{name: path.Clean(name)[1:], mode: int64(info.Mode().Perm()), data: data})
	}
	var buf bytes.Buffer
	if err := tarTo(&buf, entries); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// tarEntry is a directory when its name ends in a slash, else a file.
type tarEntry struct {
	name string
	mode int64
	data []byte
}

func writeTar(path string, entries []tarEntry) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := tarTo(f, entries); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func tarTo(w io.Writer, entries []tarEntry) error {
	tw := tar.NewWriter(w)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Mode: e.mode, ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg, Size: int64(len(e.data))}
		if strings.HasSuffix(e.name, "/") {
			hdr.Typeflag, hdr.Size = tar.TypeDir, 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := tw.Write(e.data); err != nil {
			return err
		}
	}
	return tw.Close()
}

// BuildPauseImage builds the pause program of testdata/pause as a static
// binary and packs it into dir as PauseImage, the node's default sandbox
// image, which also serves as a do-nothing container image.
func BuildPauseImage(ctx context.Context, dir string) (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", fmt.Errorf("build pause image: %w", err)
	}
	bin := filepath.Join(dir, "pause")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", bin, "./e2e/framework/testdata/pause")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build pause image: go build: %w: %s", err, bytes.TrimSpace(out))
	}
	return BuildImage(dir, PauseImage, map[string]string{"/pause": bin}, []string{"/pause"})
}
