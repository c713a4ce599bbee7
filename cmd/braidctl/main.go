// Command braidctl explains, lints and checks braid's multi-network
// attachments; see package ctl.
package main

import (
	"os"

	"github.com/braid-cni/braid/ctl"
)

func main() { os.Exit(ctl.MainOS()) }
