#!/usr/bin/env bash
# Builds the operator as a static (musl) binary: the command the Dockerfile runs, and CI too,
# so that what CI checked is what an image holds. Prints the binary's path.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# The host's architecture, so that an image built on arm64 holds an arm64 binary.
target=$(uname -m)-unknown-linux-musl
rustup target list --installed | grep -qx "$target" || rustup target add "$target" >&2
if ! command -v musl-gcc >/dev/null 2>&1; then
  apt-get update -qq >&2 && apt-get install -y -qq --no-install-recommends musl-tools >&2
fi
cargo build --release --locked --target "$target" --bin stytch-sso-operator >&2

binary=${CARGO_TARGET_DIR:-target}/$target/release/stytch-sso-operator
# A dynamically linked binary would not start on the distroless static base image.
if ldd "$binary" 2>&1 | grep -q '=>'; then
  echo "$binary is dynamically linked" >&2
  exit 1
fi
"$binary" --version >&2
echo "$binary"
