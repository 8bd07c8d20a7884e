#!/usr/bin/env bash
# The benchmark: how the operator's cost grows with its work (README, "Benchmark").
#
#   hack/bench.sh            N = 1000 and 10000 objects x 0 and 100 ms latency, 3 runs each
#   hack/bench.sh --quick    one run of 1000 objects at 0 ms (a few minutes)
#   hack/bench.sh --add      keep the results of earlier configurations; the report shows all
#   hack/bench.sh -- ARGS    more flags for `stytch-sso-bench run` (e.g. --baseline-sample 200)
#
# Each configuration gets a fresh control plane of its own (the local control plane has no
# namespace controller, so objects of an earlier configuration would otherwise linger), with
# the release builds of the operator and the fake Stytch started by the driver. The report
# goes to target/bench/report.md and report.json; each configuration's figures and each run's
# logs to target/bench/results/.
#
# Environment (defaults in brackets):
#   BENCH_OBJECTS ["1000 10000"]  BENCH_LATENCIES_MS ["0 100"]  BENCH_RUNS [3]
#   BENCH_ETCD_PORT [25794] (and the next port)  BENCH_APISERVER_PORT [28447]
#
# It is a measurement, not a test: it fails only when something does not run, never on a
# figure.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

objects=${BENCH_OBJECTS:-1000 10000}
latencies=${BENCH_LATENCIES_MS:-0 100}
runs=${BENCH_RUNS:-3}
extra=()
add=false
while (($#)); do
  case "$1" in
    --quick) objects=1000; latencies=${latencies%% *}; runs=1 ;;
    --add) add=true ;;
    --) shift; extra=("$@"); break ;;
    *) echo "bench: unknown argument '$1' (see the top of $0)" >&2; exit 2 ;;
  esac
  shift
done
export ETCD_PORT=${BENCH_ETCD_PORT:-25794} APISERVER_PORT=${BENCH_APISERVER_PORT:-28447}

cluster_dir=$PWD/.local/bench-cluster
out_dir=$PWD/target/bench
results_dir=$out_dir/results
trap 'hack/local-cluster.sh down "$cluster_dir"' EXIT

hack/install-prerequisites.sh
echo "==> building the release binaries" >&2
nice -n 10 cargo build --release --workspace --bins --locked --quiet
PATH=$(dirname "$(hack/kubectl-path.sh)"):$PATH
$add || rm -rf "$results_dir"
mkdir -p "$results_dir"

for n in $objects; do
  for latency in $latencies; do
    echo "==> $n objects, $latency ms: a fresh control plane on $ETCD_PORT/$APISERVER_PORT" >&2
    hack/local-cluster.sh down "$cluster_dir"
    hack/local-cluster.sh up "$cluster_dir" 2>"$out_dir/local-cluster.log" ||
      { cat "$out_dir/local-cluster.log" >&2; exit 1; }
    export KUBECONFIG=$cluster_dir/kubeconfig
    kubectl apply --server-side -f crds/ >/dev/null
    kubectl wait --for=condition=Established crd/oidcconnections.sso.stytch-operator.dev \
      --timeout=60s >/dev/null
    target/release/stytch-sso-bench run --objects "$n" --latency-ms "$latency" --runs "$runs" \
      --bin-dir target/release --out "$results_dir" "${extra[@]}"
  done
done
hack/local-cluster.sh down "$cluster_dir"

target/release/stytch-sso-bench report --results "$results_dir" --out "$out_dir"
