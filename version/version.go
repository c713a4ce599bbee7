// Package version holds braid's version, set by the linker:
//
//	go build -ldflags "-X github.com/braid-cni/braid/version.Version=v0.1.0"
package version

// Version is braid's release; "dev" in untagged builds.
var Version = "dev"
