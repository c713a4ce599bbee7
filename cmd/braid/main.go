// Command braid is the CNI meta-plugin: the runtime calls it as the node's
// primary plugin, and it attaches the cluster network and every network the
// pod selects.
package main

import (
	"github.com/containernetworking/cni/pkg/skel"
	cniversion "github.com/containernetworking/cni/pkg/version"

	"github.com/braid-cni/braid/plugin"
	"github.com/braid-cni/braid/version"
)

func main() {
	skel.PluginMainFuncs(plugin.New().Funcs(), cniversion.All, "braid "+version.Version+": multi-network meta-plugin")
}
