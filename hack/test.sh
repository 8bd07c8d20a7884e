#!/usr/bin/env bash
# The test command: formatting, lints, unit tests and end-to-end tests on a local control
# plane started for this run (and stopped afterwards).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

hack/install-prerequisites.sh

# A control plane of its own, on ports apart from the demo's, so both can run at once.
export ETCD_PORT=${TEST_ETCD_PORT:-24790} APISERVER_PORT=${TEST_APISERVER_PORT:-27443}
cluster_dir=$PWD/.local/test-cluster
trap 'hack/local-cluster.sh down "$cluster_dir"' EXIT
hack/local-cluster.sh down "$cluster_dir"
hack/local-cluster.sh up "$cluster_dir"
export KUBECONFIG=$cluster_dir/kubeconfig
PATH=$(dirname "$(hack/kubectl-path.sh)"):$PATH

cargo fmt --all -- --check
shellcheck hack/*.sh .ci/run
cargo clippy --workspace --all-targets --locked -- -D warnings
# The end-to-end tests start both binaries as processes of their own.
cargo build --workspace --bins --locked
cargo test --workspace --locked
# The reliability scenarios ran above at their short profile; assemble their report.
hack/reliability.sh --report-only
# The Helm chart: lint and schemas, then installed on the control plane, where its
# ServiceAccount's rights are checked and the operator reconciles with that identity.
hack/chart-test.sh all
