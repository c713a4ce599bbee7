// The module root for the mains here. Builds never read this file: they
// name the module file of the Kubernetes version they build with
// -modfile=v1.MINOR.mod (see pin.sh and hack/install-tools.sh). It also keeps
// these packages out of braid's own module.
module github.com/braid-cni/braid/hack/tools/k8s

go 1.26.0
