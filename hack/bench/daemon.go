package main

import (
	"context"
	"path/filepath"

	"github.com/braid-cni/braid/e2e/framework"
)

// startDaemon runs braidd with its own directory under the work directory
// and waits until it is ready. The env stops it in tearDown.
func (e *env) startDaemon(ctx context.Context, name string, parallel bool) (*framework.Braidd, error) {
	d, err := framework.NewBraidd(e.braiddBin, filepath.Join(e.work, name), map[string]any{
		"kubeconfig": e.kubeconfig, "nodeName": "node1", "logLevel": "info", "parallelAttach": parallel,
	})
	if err != nil {
		return nil, err
	}
	e.daemons = append(e.daemons, d)
	return d, d.Start(ctx)
}
