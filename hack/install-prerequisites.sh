#!/usr/bin/env bash
# Installs what the tests and the demo need and a fresh machine may lack. Idempotent.
set -euo pipefail

# Commands, and the Debian package that brings each.
declare -A package=(
  [curl]=curl [jq]=jq [openssl]=openssl [shellcheck]=shellcheck
  [cc]=gcc [python3]=python3
)
missing=()
for tool in "${!package[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("${package[$tool]}")
done
# chart-test.sh installs its schema validator into a virtual environment.
if command -v python3 >/dev/null 2>&1 && ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
  missing+=(python3-venv)
fi
if ((${#missing[@]})); then
  echo "installing ${missing[*]}" >&2
  apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
fi
for tool in cargo go rustup; do
  command -v "$tool" >/dev/null 2>&1 || { echo "$tool is required but not installed" >&2; exit 1; }
done
installed=$(rustup component list --installed 2>/dev/null)
for component in clippy rustfmt; do
  grep -q "^$component" <<<"$installed" || rustup component add "$component"
done
hack_dir=$(dirname "${BASH_SOURCE[0]}")
"$hack_dir/local-cluster.sh" build etcd kube-apiserver
"$hack_dir/kubectl-path.sh" >/dev/null
