#!/usr/bin/env bash
# Installs what braid's e2e tests and demo need, and links it into bin/:
#   etcd            /usr/bin/etcd (Debian etcd-server, with iproute2 and iptables)
#   kube-apiserver  built from hack/tools/kube-apiserver, cached per version
#   CNI plugins     reference plugins, cached per version, linked into bin/plugins/
#   cnitool         cached next to the plugins, linked into bin/
# Idempotent; with a warm cache it only checks files and refreshes links.
set -euo pipefail

K8S_VERSION=v1.34.4
PLUGINS_VERSION=v1.9.1
CNI_VERSION=v1.3.0
PLUGINS=(main/bridge main/macvlan ipam/host-local ipam/static meta/tuning meta/portmap)

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/braid"
APISERVER_DIR="$CACHE/$K8S_VERSION"
PLUGINS_DIR="$CACHE/plugins-$PLUGINS_VERSION"

log() { echo "install-tools: $*" >&2; }

# apt_install installs Debian packages without letting their maintainer
# scripts start services: etcd is run by the tests, never as a daemon.
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
	if ((${#missing[@]} > 0)); then
		apt_install "${missing[@]}"
	fi
}

ensure_apiserver() {
	local bin="$APISERVER_DIR/kube-apiserver"
	[[ -x $bin ]] && return 0
	mkdir -p "$APISERVER_DIR"
	log "building kube-apiserver $K8S_VERSION (takes a few minutes)"
	(
		cd "$ROOT/hack/tools/kube-apiserver"
		export GOWORK=off
		# go.sum is committed; recreate it only on a checkout without it.
		[[ -f go.sum ]] || go mod tidy
		go build -o "$bin.tmp.$$" -ldflags "-X k8s.io/component-base/version.gitVersion=$K8S_VERSION" .
	)
	mv -f "$bin.tmp.$$" "$bin"
}

# go_install installs Go commands into a cache directory via a temporary
# GOBIN, so an interrupted build never leaves a half-written binary behind.
go_install() {
	local dest=$1
	shift
	local tmp
	tmp=$(mktemp -d "$dest.tmp.XXXXXX")
	GOWORK=off GOBIN="$tmp" go install "$@"
	mv -f "$tmp"/* "$dest"/
	rmdir "$tmp"
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
	ln -sfn "$APISERVER_DIR/kube-apiserver" "$ROOT/bin/kube-apiserver"
	ln -sfn "$PLUGINS_DIR/cnitool" "$ROOT/bin/cnitool"
	for p in "${PLUGINS[@]}"; do
		ln -sfn "$PLUGINS_DIR/$(basename "$p")" "$ROOT/bin/plugins/$(basename "$p")"
	done
}

report() {
	printf '%-15s %s\n' etcd /usr/bin/etcd
	printf '%-15s %s\n' ip "$(command -v ip)"
	printf '%-15s %s\n' kube-apiserver "$ROOT/bin/kube-apiserver"
	printf '%-15s %s\n' cnitool "$ROOT/bin/cnitool"
	for p in "${PLUGINS[@]}"; do
		printf '%-15s %s\n' "$(basename "$p")" "$ROOT/bin/plugins/$(basename "$p")"
	done
}

command -v go >/dev/null || {
	log "go is not on PATH"
	exit 1
}
ensure_packages
ensure_apiserver
ensure_plugins
ensure_cnitool
link_into_repo
report
