#!/usr/bin/env bash
# Prints the kubectl to use: the one on the PATH, else one built from source (cached).
set -euo pipefail
if command -v kubectl >/dev/null 2>&1; then
  command -v kubectl
else
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  "$root/hack/local-cluster.sh" build kubectl >&2
  "$root/hack/local-cluster.sh" bin kubectl
fi
