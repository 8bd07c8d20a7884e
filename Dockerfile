# syntax=docker/dockerfile:1
# The operator as a static (musl) binary on a distroless base, run as a non-root user.
#
#   docker build -t stytch-sso-operator .
#
# The build stage runs hack/build-static.sh, as CI does, so an image built here holds the
# binary CI built and checked.

FROM rust:1-bookworm AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends musl-tools \
    && rm -rf /var/lib/apt/lists/* \
    && rustup target add "$(uname -m)-unknown-linux-musl"
WORKDIR /src
COPY . .
# The cache mounts keep the registry and build outputs between builds; the binary is copied
# out of the mounted target directory within the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cp "$(hack/build-static.sh)" /stytch-sso-operator

# distroless/static carries the CA certificates that rustls-platform-verifier reads to trust
# Stytch's HTTPS endpoints, /etc/passwd with the nonroot user, and nothing else: no shell.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /stytch-sso-operator /stytch-sso-operator
# nonroot:nonroot in distroless; numeric so that runAsNonRoot can verify it.
USER 65532:65532
ENTRYPOINT ["/stytch-sso-operator"]
CMD ["run"]
