#!/usr/bin/env bash
# Installs what braid's e2e tests and demo need, and links it into bin/:
#   etcd            /usr/bin/etcd (Debian etcd-server, with iproute2 and iptables)
#   containerd      containerd, ctr and containerd-shim-runc-v2 v2.4.2 built
#                   from the Go module proxy, cached per version, linked into
#                   bin/; never started as a service: the e2e node runs its own
#   runc            /usr/bin/runc (Debian)
#   containerd 1.6  /usr/bin/containerd, ctr and shim (Debian, with runc): the
#                   second runtime, BRAID_CONTAINERD=/usr/bin/containerd
#   kube-apiserver, kube-controller-manager, kube-scheduler, kubelet
#                   built from hack/tools/k8s (one main per binary) at
#                   K8S_VERSION (default v1.37.2; v1.35.4 and v1.36.3 too),
#                   with that minor's module file, cached per version
#   CNI plugins     reference plugins, cached per version, linked into bin/plugins/
#                   (loopback too: containerd sets up every sandbox's lo with it)
#   cnitool         cached next to the plugins, linked into bin/
# Idempotent; with a warm cache it only checks files and refreshes links.
set -euo pipefail

# The supported Kubernetes versions: each has hack/tools/k8s/v1.MINOR.mod,
# written by hack/tools/k8s/pin.sh.
K8S_VERSIONS=(v1.35.4 v1.36.3 v1.37.2)
K8S_VERSION=${K8S_VERSION:-v1.37.2}
PLUGINS_VERSION=v1.10.0
CONTAINERD_VERSION=v2.4.2
CNI_VERSION=v1.3.0
PLUGINS=(main/bridge main/macvlan main/loopback ipam/host-local ipam/static meta/tuning meta/portmap)

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/braid"
K8S_DIR="$CACHE/$K8S_VERSION"
K8S_BINARIES=(kube-apiserver kube-controller-manager kube-scheduler kubelet)
# Static builds: braidd runs the plugins inside a FROM-scratch image, where a
# dynamically linked binary has no loader (the "-static" name keeps older,
# cgo-linked caches from being reused).
PLUGINS_DIR="$CACHE/plugins-$PLUGINS_VERSION-static"
CONTAINERD_DIR="$CACHE/containerd-$CONTAINERD_VERSION"
CONTAINERD_BINARIES=(containerd ctr containerd-shim-runc-v2)

log() { echo "install-tools: $*" >&2; }

[[ " ${K8S_VERSIONS[*]} " == *" $K8S_VERSION "* ]] || {
	log "K8S_VERSION=$K8S_VERSION is not one of ${K8S_VERSIONS[*]}"
	exit 1
}
K8S_MODFILE=v${K8S_VERSION#v}
K8S_MODFILE=${K8S_MODFILE%.*}.mod

# apt_install installs Debian packages without letting their maintainer
# scripts start services: etcd and containerd are run by the tests, never as
# daemons.
apt_install() {
	if [[ $(id -u) -ne 0 ]]; then
		log "need root to install $*"
		exit 1
	fi
	local policy=/usr/sbin/policy-rc.d
	local own_policy=false
	if [[ ! -e $policy ]]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy"
		chmod +x "$policy"
		own_policy=true
	fi
	log "apt-get install $*"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2 || {
		$own_policy && rm -f "$policy"
		exit 1
	}
	$own_policy && rm -f "$policy"
	return 0
}

ensure_packages() {
	local missing=()
	[[ -x /usr/bin/etcd ]] || missing+=(etcd-server)
	command -v ip >/dev/null || missing+=(iproute2)
	# The portmap plugin (port mappings on the cluster network) needs it.
	command -v iptables >/dev/null || missing+=(iptables)
	# The e2e node's second container runtime (BRAID_CONTAINERD); ctr and
	# the shim come with it.
	[[ -x /usr/bin/containerd && -x /usr/bin/ctr ]] || missing+=(containerd)
	command -v runc >/dev/null || missing+=(runc)
	if ((${#missing[@]} > 0)); then
		apt_install "${missing[@]}"
	fi
}

# ensure_kubernetes builds the Kubernetes binaries that are not cached yet,
# all in one go build so their shared packages compile once, into a temporary
# directory so an interrupted build never leaves a half-written binary behind.
ensure_kubernetes() {
	local want=()
	for b in "${K8S_BINARIES[@]}"; do
		[[ -x $K8S_DIR/$b ]] || want+=("./$b")
	done
	((${#want[@]} > 0)) || return 0
	mkdir -p "$K8S_DIR"
	log "building ${want[*]#./} $K8S_VERSION (takes a few minutes each)"
	local tmp
	tmp=$(mktemp -d "$K8S_DIR/.build.XXXXXX")
	(
		cd "$ROOT/hack/tools/k8s"
		export GOWORK=off
		go build -modfile="$K8S_MODFILE" -o "$tmp/" -ldflags "-X k8s.io/component-base/version.gitVersion=$K8S_VERSION" "${want[@]}"
	) || {
		rm -rf "$tmp"
		exit 1
	}
	mv -f "$tmp"/* "$K8S_DIR"/
	rmdir "$tmp"
}

# go_install installs Go commands into a cache directory via a temporary
# GOBIN, so an interrupted build never leaves a half-written binary behind.
go_install() {
	local dest=$1
	shift
	local tmp
	tmp=$(mktemp -d "$dest.tmp.XXXXXX")
	CGO_ENABLED=0 GOWORK=off GOBIN="$tmp" go install "$@"
	mv -f "$tmp"/* "$dest"/
	rmdir "$tmp"
}

# ensure_containerd builds the e2e node's containerd, ctr and runc shim
# from the Go module proxy. Static (cgo off): the btrfs snapshotter, the one
# part that needs cgo, is left out by its build tag, and the node uses
# overlayfs or native. The version is linked in as containerd's own build
# does (its Makefile sets the git tag), so the node reports v2.4.2, not
# 2.4.2+unknown.
ensure_containerd() {
	local want=()
	for b in "${CONTAINERD_BINARIES[@]}"; do
		[[ -x $CONTAINERD_DIR/$b ]] ||
			want+=("github.com/containerd/containerd/v2/cmd/$b@$CONTAINERD_VERSION")
	done
	((${#want[@]} > 0)) || return 0
	mkdir -p "$CONTAINERD_DIR"
	log "building containerd $CONTAINERD_VERSION (a few minutes)"
	go_install "$CONTAINERD_DIR" -ldflags "-X github.com/containerd/containerd/v2/version.Version=$CONTAINERD_VERSION" "${want[@]}"
}

# link_containerd links containerd, ctr and the shim side by side into bin/:
# the e2e framework runs the shim next to containerd.
link_containerd() {
	mkdir -p "$ROOT/bin"
	for b in "${CONTAINERD_BINARIES[@]}"; do
		ln -sfn "$CONTAINERD_DIR/$b" "$ROOT/bin/$b"
	done
}

ensure_plugins() {
	mkdir -p "$PLUGINS_DIR"
	local want=()
	for p in "${PLUGINS[@]}"; do
		[[ -x $PLUGINS_DIR/$(basename "$p") ]] ||
			want+=("github.com/containernetworking/plugins/plugins/$p@$PLUGINS_VERSION")
	done
	if ((${#want[@]} > 0)); then
		log "installing CNI plugins $PLUGINS_VERSION"
		go_install "$PLUGINS_DIR" "${want[@]}"
	fi
}

ensure_cnitool() {
	[[ -x $PLUGINS_DIR/cnitool ]] && return 0
	log "installing cnitool $CNI_VERSION"
	go_install "$PLUGINS_DIR" "github.com/containernetworking/cni/cnitool@$CNI_VERSION"
}

link_into_repo() {
	mkdir -p "$ROOT/bin/plugins"
	for b in "${K8S_BINARIES[@]}"; do
		ln -sfn "$K8S_DIR/$b" "$ROOT/bin/$b"
	done
	ln -sfn "$PLUGINS_DIR/cnitool" "$ROOT/bin/cnitool"
	for p in "${PLUGINS[@]}"; do
		ln -sfn "$PLUGINS_DIR/$(basename "$p")" "$ROOT/bin/plugins/$(basename "$p")"
	done
}

report() {
	printf '%-24s %s\n' etcd /usr/bin/etcd
	printf '%-24s %s\n' ip "$(command -v ip)"
	for b in "${CONTAINERD_BINARIES[@]}"; do
		printf '%-24s %s\n' "$b" "$ROOT/bin/$b"
	done
	printf '%-24s %s\n' "containerd 1.6" /usr/bin/containerd
	printf '%-24s %s\n' runc "$(command -v runc)"
	for b in "${K8S_BINARIES[@]}"; do
		printf '%-24s %s\n' "$b" "$ROOT/bin/$b"
	done
	printf '%-24s %s\n' cnitool "$ROOT/bin/cnitool"
	for p in "${PLUGINS[@]}"; do
		printf '%-24s %s\n' "$(basename "$p")" "$ROOT/bin/plugins/$(basename "$p")"
	done
}

command -v go >/dev/null || {
	log "go is not on PATH"
	exit 1
}
ensure_packages
ensure_kubernetes
ensure_containerd
ensure_plugins
ensure_cnitool
link_into_repo
link_containerd
report
