# webhookd container image: a static Go binary on distroless, running as nonroot.
# The same image serves every subcommand (worker, `subscriptions apply`, `receiver`, ...).
#
#   docker build -t webhookd .
#   docker run --rm webhookd --help
#
# Needs BuildKit (the default builder since Docker 23) for the build-cache mount.

# ---- build ---------------------------------------------------------------------------------------
FROM golang:1.26 AS build
WORKDIR /src
ENV CGO_ENABLED=0

# Module download in its own layer: only go.mod/go.sum changes invalidate it.
COPY go.mod go.sum ./
RUN go mod download && go mod verify

COPY . .
RUN --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -ldflags="-s -w" -o /out/webhookd ./cmd/webhookd

# ---- runtime -------------------------------------------------------------------------------------
# static-debian12 has CA certificates, tzdata and /etc/passwd with nonroot (uid/gid 65532); no shell.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/webhookd /webhookd
# Numeric: a pod with runAsNonRoot can check a numeric user without runAsUser ("nonroot" it cannot).
USER 65532:65532
# /healthz and /readyz (ops.addr, WEBHOOKD_OPS_ADDR)
EXPOSE 8081
ENTRYPOINT ["/webhookd"]
