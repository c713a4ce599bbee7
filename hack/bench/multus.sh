#!/usr/bin/env bash
# Builds upstream Multus (multus-cni, from the Go module proxy) for
# hack/bench's optional multus modes, into the cache outside the clone:
# ${XDG_CACHE_HOME:-$HOME/.cache}/braid/multus-<version>/, where the bench
# looks for them: multus (the thin plugin), multus-daemon and multus-shim
# (thick). Nothing of Multus enters the repository. Binaries already there
# are kept. MULTUS_VERSION picks another release (the proxy serves v4.3.0,
# v4.2.3, v4.2.2); prints the directory.
#
# `go install <module>/cmd/multus@<version>` is refused (it asks the proxy
# for the module's version list to look for a deprecation, and the proxy
# answers 403), so this builds from a writable copy of the downloaded
# module: static and with the version stamped, as Multus's own
# hack/build-go.sh does.
set -euo pipefail

version="${MULTUS_VERSION:-v4.3.0}"
module=gopkg.in/k8snetworkplumbingwg/multus-cni.v4
out="${XDG_CACHE_HOME:-$HOME/.cache}/braid/multus-${version}"
programs=(multus multus-daemon multus-shim)

missing=()
for p in "${programs[@]}"; do
	[[ -x "$out/$p" ]] || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
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
mkdir -p "$out"
for p in "${missing[@]}"; do
	(
		cd "$tmp/src"
		CGO_ENABLED=0 go build \
			-ldflags "-X $module/pkg/multus.version=$version -X $module/pkg/multus.releaseStatus=,released" \
			-o "$out/$p.tmp" "./cmd/$p"
	)
	mv "$out/$p.tmp" "$out/$p"
done
echo "$out"
