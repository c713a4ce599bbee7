package main

import (
	"context"
	"maps"
	"path/filepath"

	"github.com/braid-cni/braid/e2e/framework"
)

// benchNode is the node braidd runs on unless its config says otherwise;
// the latency and burst pods are scheduled there.
const benchNode = "node1"

// startDaemon runs braidd (of bin) with its own directory under the work
// directory and waits until it is ready. conf adds to or overrides the defaults
// (the bench kubeconfig, node benchNode, log level info). The env stops it
// in tearDown.
func (e *env) startDaemon(ctx context.Context, bin binaries, name string, conf map[string]any) (*framework.Braidd, error) {
	c := map[string]any{"kubeconfig": e.kubeconfig, "nodeName": benchNode, "logLevel": "info"}
	maps.Copy(c, conf)
	d, err := framework.NewBraidd(bin.braidd, filepath.Join(e.work, name), c)
	if err != nil {
		return nil, err
	}
	e.daemons = append(e.daemons, d)
	return d, d.Start(ctx)
}
