# The braid image the thin DaemonSet runs (deployments/daemonset-thin.yaml):
# the plugin, its installer and the node daemon under /usr/src/braid/bin. Static binaries, so
# the final stage needs nothing else.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN make build

FROM scratch
COPY --from=build /src/bin/braid /src/bin/braid-shim /src/bin/braid-install /src/bin/braidd /src/bin/braidctl /src/bin/braid-webhook /usr/src/braid/bin/
ENTRYPOINT ["/usr/src/braid/bin/braid-install"]
