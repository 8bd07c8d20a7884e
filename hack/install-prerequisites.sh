#!/usr/bin/env bash
# Installs what the tests and the demo need and a fresh machine may lack. Idempotent.
set -euo pipefail

missing=()
for tool in curl jq openssl shellcheck; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if ((${#missing[@]})); then
  echo "installing ${missing[*]}" >&2
  apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
fi
for tool in cargo go; do
  command -v "$tool" >/dev/null 2>&1 || { echo "$tool is required but not installed" >&2; exit 1; }
done
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt
hack_dir=$(dirname "${BASH_SOURCE[0]}")
"$hack_dir/local-cluster.sh" build etcd kube-apiserver
"$hack_dir/kubectl-path.sh" >/dev/null
