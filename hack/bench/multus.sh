#!/usr/bin/env bash
# Builds upstream Multus's thin plugin (multus-cni, from the Go module
# proxy) for hack/bench's optional multus mode, into the cache outside the
# clone: ${XDG_CACHE_HOME:-$HOME/.cache}/braid/multus-<version>/multus,
# where the bench looks for it. Nothing of Multus enters the repository.
# A binary already there is kept. MULTUS_VERSION picks another release
# (the proxy serves v4.3.0, v4.2.3, v4.2.2); prints the binary's path.
#
# `go install <module>/cmd/multus@<version>` is refused (it asks the proxy
# for the module's version list to look for a deprecation, and the proxy
# answers 403), so this builds from a writable copy of the downloaded
# module: static and with the version stamped, as Multus's own
# hack/build-go.sh does.
set -euo pipefail

version="${MULTUS_VERSION:-v4.3.0}"
module=gopkg.in/k8snetworkplumbingwg/multus-cni.v4
out="${XDG_CACHE_HOME:-$HOME/.cache}/braid/multus-${version}/multus"

if [[ -x "$out" ]]; then
	echo "$out"
	exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Outside any module, so that braid's go.mod has no say in the download.
dir=$(cd "$tmp" && GOFLAGS=-mod=mod go mod download -json "$module@$version" |
	sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
if [[ -z "$dir" ]]; then
	echo "multus.sh: no module directory for $module@$version" >&2
	exit 1
fi

cp -r "$dir" "$tmp/src"
chmod -R u+w "$tmp/src"
mkdir -p "$(dirname "$out")"
(
	cd "$tmp/src"
	CGO_ENABLED=0 go build \
		-ldflags "-X $module/pkg/multus.version=$version -X $module/pkg/multus.releaseStatus=,released" \
		-o "$out.tmp" ./cmd/multus
)
mv "$out.tmp" "$out"
echo "$out"
