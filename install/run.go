package install

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"
)

// Run installs braid on the node and keeps its files current until ctx is
// done: it copies the binary once, then every s.Interval refreshes the
// kubeconfig and braid's config with Sync. A failed Sync is logged and
// retried; only a failed copy or cleanup ends Run with an error. When ctx
// is done and s.CleanupOnExit is set, Run removes braid's config, so the
// node falls back to its primary network; the binary stays, because pods
// attached through braid still need it for DEL.
func Run(ctx context.Context, s Settings, log *slog.Logger) error {
	if err := CopyBinary(s.BraidBinary, s.CNIBinDir); err != nil {
		return err
	}
	log.Info("installed braid binary", "dir", s.CNIBinDir)
	ticker := time.NewTicker(s.Interval)
	defer ticker.Stop()
	for {
		err := Sync(s, log)
		var none *NoPrimaryError
		var broken *BrokenPrimaryError
		switch {
		case errors.As(err, &none):
			log.Info("waiting for a primary CNI config", "reason", err, "retry", s.Interval)
		case errors.As(err, &broken):
			log.Warn("primary CNI config unreadable; braid's config kept as it is", "primary", broken.Path, "reason", err, "retry", s.Interval)
		case err != nil:
			log.Error("sync failed", "err", err, "retry", s.Interval)
		}
		select {
		case <-ctx.Done():
			return cleanup(s, log)
		case <-ticker.C:
		}
	}
}

func cleanup(s Settings, log *slog.Logger) error {
	if !s.CleanupOnExit {
		log.Info("stopping; leaving braid's config in place")
		return nil
	}
	if err := Remove(s.CNIConfDir, s.OwnConfigName); err != nil {
		return err
	}
	log.Info("stopping; removed braid's config", "file", s.OwnConfigName)
	return nil
}

// Sync does one round: it writes the kubeconfig when the service account
// token (which the kubelet rotates) or CA changed, then writes braid's
// config for the current primary config when its content changed. The
// kubeconfig comes first, so braid never runs without it.
func Sync(s Settings, log *slog.Logger) error {
	if err := syncKubeconfig(s, log); err != nil {
		return err
	}
	return syncConfig(s, log)
}

func syncKubeconfig(s Settings, log *slog.Logger) error {
	path, err := s.KubeconfigPath()
	if err != nil {
		return err
	}
	token, ca, err := ServiceAccount(s.SADir)
	if err != nil {
		return err
	}
	data, err := Kubeconfig(s.APIServer, ca, token)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create kubeconfig directory: %w", err)
	}
	changed, err := WriteIfChanged(path, data, 0o600)
	if err != nil {
		return err
	}
	if changed {
		log.Info("wrote kubeconfig", "path", path, "server", s.APIServer)
	}
	return nil
}

func syncConfig(s Settings, log *slog.Logger) error {
	primary, err := FindPrimary(s.CNIConfDir, s.OwnConfigName)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(primary)
	if err != nil {
		return fmt.Errorf("read primary config: %w", err)
	}
	conf, err := Config(primary, data, s.Options)
	if err != nil {
		return err
	}
	if filepath.Base(primary) < s.OwnConfigName {
		// The runtime reads the alphabetically first config: this one.
		log.Warn("primary config sorts before braid's; the runtime will not call braid",
			"primary", filepath.Base(primary), "own", s.OwnConfigName)
	}
	path := filepath.Join(s.CNIConfDir, s.OwnConfigName)
	changed, err := WriteIfChanged(path, conf, 0o644)
	if err != nil {
		return err
	}
	if changed {
		log.Info("wrote braid config", "path", path, "primary", filepath.Base(primary))
	}
	return nil
}
