package node

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/braid-cni/braid/e2e/framework"
)

// uninstall deletes the mode's DaemonSet and checks that braid handed the
// node back: once the DaemonSet's pods are gone, braid's config is gone too
// (the thin installer's --cleanup-on-exit, braidd's removeConfigOnExit) and
// the node's own config is in place. The DaemonSet may be missing: the
// install may have failed before creating it.
func (c *cluster) uninstall(ctx context.Context, m mode) error {
	client, _, err := c.cp.Clients()
	if err != nil {
		return err
	}
	err = client.AppsV1().DaemonSets(systemNamespace).Delete(ctx, m.app, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete DaemonSet %s/%s: %w", systemNamespace, m.app, err)
	}
	pods, err := c.pods(ctx, m.app)
	if err != nil {
		return err
	}
	var errs []error
	for _, p := range pods {
		errs = append(errs, framework.WaitForPodGone(ctx, client, p.Namespace, p.Name, installTimeout))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := waitFile(ctx, filepath.Join(hostConfDir, braidFile), false, 10*time.Second); err != nil {
		return fmt.Errorf("braid's config stayed after the DaemonSet's pods were gone: %w", err)
	}
	if err := waitFile(ctx, filepath.Join(hostConfDir, primaryFile), true, time.Second); err != nil {
		return fmt.Errorf("the node's own config is gone: %w", err)
	}
	return nil
}
