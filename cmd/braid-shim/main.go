// Command braid-shim is braid's plugin in thick mode: it forwards every CNI
// call to braidd on the node and prints its answer. It holds no credentials
// and links no Kubernetes client, so each exec by the runtime is cheap.
package main

import (
	"os"

	"github.com/containernetworking/cni/pkg/skel"
	cniversion "github.com/containernetworking/cni/pkg/version"

	"github.com/braid-cni/braid/shim"
	"github.com/braid-cni/braid/version"
)

func main() {
	skel.PluginMainFuncs(shim.NewPlugin(os.Stdout).Funcs(), cniversion.All, "braid-shim "+version.Version+": forwards to braidd")
}
