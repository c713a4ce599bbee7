# braid's build and test entry points. `make test` is what CI runs.
SHELL := /bin/bash
GO ?= go

# Every package but the e2e suite, which needs the control plane binaries
# (make tools), the braid binary and root.
UNIT_PKGS = $$($(GO) list ./... | grep -v /e2e)

.PHONY: tools build unit fuzz e2e e2e-node test vet fmt-check bench bench-multus demo demo-down clean

tools:
	bash hack/install-tools.sh

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS = -X github.com/braid-cni/braid/version.Version=$(VERSION)

build:
	CGO_ENABLED=0 $(GO) build -ldflags "$(LDFLAGS)" -o bin/braid ./cmd/braid
	CGO_ENABLED=0 $(GO) build -ldflags "$(LDFLAGS)" -o bin/braid-shim ./cmd/braid-shim
	CGO_ENABLED=0 $(GO) build -ldflags "$(LDFLAGS)" -o bin/braid-install ./cmd/braid-install
	CGO_ENABLED=0 $(GO) build -ldflags "$(LDFLAGS)" -o bin/braidd ./cmd/braidd
	CGO_ENABLED=0 $(GO) build -ldflags "$(LDFLAGS)" -o bin/braidctl ./cmd/braidctl
	CGO_ENABLED=0 $(GO) build -ldflags "$(LDFLAGS)" -o bin/braid-webhook ./cmd/braid-webhook

unit:
	$(GO) test $(UNIT_PKGS)

# One package at a time: the libcni tier and the real-node tier (e2e/node)
# both change the host's network, and the node tier owns /etc/cni/net.d.
e2e: tools build
	$(GO) test -p 1 -count=1 -timeout 45m ./e2e/...

# The real-node tier alone: kubelet, containerd and braid from deployments/.
e2e-node: tools build
	$(GO) test -count=1 -timeout 30m -v ./e2e/node/

vet:
	$(GO) vet ./...

# Reports files gofmt would change and fails; it never rewrites them.
fmt-check:
	@out=$$(gofmt -l $$(git ls-files --cached --others --exclude-standard '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed in:"; echo "$$out"; exit 1; fi

# Each fuzzer briefly (part of make test); longer by hand, e.g.
# make fuzz FUZZTIME=10m. Inputs that fail land in the package's testdata/fuzz.
FUZZTIME ?= 5s
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParseNetworks$$' -fuzztime $(FUZZTIME) ./annotations
	$(GO) test -run '^$$' -fuzz '^FuzzNADConfig$$' -fuzztime $(FUZZTIME) ./plan

test: vet fmt-check unit fuzz e2e

# The Go benchmarks, then hack/bench: ADD/DEL latency against N secondary
# networks (floor, noop, thin, thick; writes bench.png), braid's API requests
# per pod (the API server's audit log), a 200-pod burst through braidd,
# hot-plug latency (20 pods, sequential and concurrent) and braidd's memory
# with 1000 pods and 500 NADs; needs root. `go run ./hack/bench -run profile`
# traces one ADD per mode with strace.
# BASELINE=<git revision> also measures that revision's binaries in the
# latency rounds (thin@base, thick@base).
bench: tools build
	$(GO) test -run '^$$' -bench . -benchmem $(UNIT_PKGS)
	$(GO) run ./hack/bench $(if $(BASELINE),-baseline $(BASELINE))

# Upstream Multus (multus-cni v4.3.0 from the Go module proxy: the thin
# plugin, multus-daemon and multus-shim) built into
# ~/.cache/braid/multus-v4.3.0, outside the clone; while they are there,
# `make bench` measures them in the latency rounds as modes multus and
# multus-thick.
bench-multus:
	bash hack/bench/multus.sh

# A single-node cluster with braid installed from deployments/ (thick mode;
# MODE=thin for the plugin alone) and the examples/ applied, left running;
# demo-down stops it and restores the host.
demo: tools build
	$(GO) run ./hack/demo up $(if $(MODE),-mode $(MODE))

demo-down:
	$(GO) run ./hack/demo down

clean:
	rm -rf bin _output
