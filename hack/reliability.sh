#!/usr/bin/env bash
# The reliability suite at full size on a control plane of its own, then its report.
#
#   hack/reliability.sh [SCENARIO...]     run tests/reliability_<SCENARIO>.rs (default: all)
#   hack/reliability.sh --report-only     only assemble the report from the last fragments
#
# Each scenario writes a JSON fragment to <target>/debug/reliability/<scenario>.json (or
# <scenario>_<part>.json, one per part, when its file holds several); this
# script assembles the fragments of every scenario, those run now and the last ones of the
# others, into <target>/reliability/report.md and report.json (<target> is CARGO_TARGET_DIR or
# ./target), with each scenario's test output beside them. It exits non-zero when a scenario it
# ran failed or wrote no fragment (with --report-only: when any fragment is missing or failed);
# the report is written anyway.
# RELIABILITY_PROFILE (default full) and RELIABILITY_SEED are passed on to the tests;
# RELIABILITY_ETCD_PORT [25790] (and the next port) and RELIABILITY_APISERVER_PORT [28443]
# place the control plane.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

target_dir=${CARGO_TARGET_DIR:-$PWD/target}
fragments_dir=$target_dir/debug/reliability
report_dir=$target_dir/reliability

# Writes report.json and report.md from the fragments of the scenarios named: <scenario>.json,
# or <scenario>_<part>.json for each part of a file that holds several.
assemble_report() {
  local scenarios_json
  scenarios_json=$(printf '%s\n' "$@" | jq -R . | jq -s .)
  local fragments=()
  local scenario fragment
  for scenario in "$@"; do
    for fragment in "$fragments_dir/$scenario.json" "$fragments_dir/$scenario"_*.json; do
      [[ -f $fragment ]] && fragments+=("$fragment")
    done
  done
  jq -n --argjson expected "$scenarios_json" --arg generated "$(date -u +%FT%TZ)" '
    [inputs] as $fragments
    | [$expected[] as $scenario
       | select($fragments
           | any(.scenario == $scenario or (.scenario | startswith($scenario + "_"))) | not)
       | $scenario] as $missing
    | {
      generated: $generated,
      scenarios: $fragments,
      missing: $missing,
      totals: {
        updates_lost: ($fragments | map(.updates_lost) | add // 0),
        max_calls_per_object_per_minute:
          ($fragments | map(.max_calls_per_object_per_minute // empty) | max),
        faults_injected: ($fragments | map(.faults_injected | length) | add // 0),
        passed: (($fragments | map(.passed) | all) and ($missing | length == 0))
      }
    }' "${fragments[@]}" </dev/null >"$report_dir/report.json"

  jq -r '
    def cell: if . == null then "-" elif type == "number" then (. * 10 | round / 10 | tostring)
      else tostring end;
    "# Reliability report",
    "",
    "Generated \(.generated). Profiles: \(.scenarios | map(.profile) | unique | join(", ")).",
    "",
    "- updates lost: **\(.totals.updates_lost)** (must be 0)",
    "- most calls per object per minute during a fault: \(.totals.max_calls_per_object_per_minute | cell)",
    "- all scenarios passed: \(.totals.passed)",
    (if (.missing | length) > 0 then "- scenarios without a fragment (not run, or failed early): \(.missing | join(", "))" else empty end),
    "",
    "| scenario | profile | objects | updates lost | max calls/object/min | recovery (s) | Stytch calls (list/put/other) | passed |",
    "| --- | --- | --- | --- | --- | --- | --- | --- |",
    (.scenarios[] |
      "| \(.scenario) | \(.profile) | \(.objects) | \(.updates_lost) | \(.max_calls_per_object_per_minute | cell) | \(.recovery_seconds | cell) | \(.stytch_calls.list)/\(.stytch_calls.put)/\(.stytch_calls.other) | \(.passed) |"),
    "",
    (.scenarios[] |
      "## \(.scenario)",
      "",
      "Faults injected:",
      (.faults_injected[] | "- \(.)"),
      "",
      "Bound: \(.bound)",
      "",
      "Notes: \(.notes)",
      "")
  ' "$report_dir/report.json" >"$report_dir/report.md"
  echo "report: $report_dir/report.md" >&2
}

all_scenarios() {
  local file
  for file in tests/reliability_*.rs; do
    file=${file#tests/reliability_}
    echo "${file%.rs}"
  done
}

mkdir -p "$report_dir"
command -v jq >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq jq >/dev/null; }

mapfile -t every_scenario < <(all_scenarios)
if [[ ${1:-} == --report-only ]]; then
  assemble_report "${every_scenario[@]}"
  jq -e .totals.passed "$report_dir/report.json" >/dev/null
  exit
fi
if (($#)); then scenarios=("$@"); else scenarios=("${every_scenario[@]}"); fi

hack/install-prerequisites.sh
# A control plane of its own, on ports apart from the tests' and the demo's.
export ETCD_PORT=${RELIABILITY_ETCD_PORT:-25790} APISERVER_PORT=${RELIABILITY_APISERVER_PORT:-28443}
cluster_dir=$PWD/.local/reliability-cluster
trap 'hack/local-cluster.sh down "$cluster_dir"' EXIT
hack/local-cluster.sh down "$cluster_dir"
hack/local-cluster.sh up "$cluster_dir"
export KUBECONFIG=$cluster_dir/kubeconfig
PATH=$(dirname "$(hack/kubectl-path.sh)"):$PATH

export RELIABILITY_PROFILE=${RELIABILITY_PROFILE:-full}
cargo build --workspace --bins --locked
# Only the fragments of the scenarios run now: the others stay for the report.
for scenario in "${scenarios[@]}"; do
  rm -f "$fragments_dir/$scenario.json" "$fragments_dir/$scenario"_*.json
done
failed=()
for scenario in "${scenarios[@]}"; do
  echo "reliability: $scenario ($RELIABILITY_PROFILE)" >&2
  # One scenario at a time, each alone on the machine, so timings are its own.
  if ! cargo test --locked --test "reliability_$scenario" -- --nocapture --test-threads=1 \
    >"$report_dir/$scenario.log" 2>&1; then
    failed+=("$scenario")
    echo "reliability: $scenario FAILED (see $report_dir/$scenario.log)" >&2
  fi
done
assemble_report "${every_scenario[@]}"
for scenario in "${scenarios[@]}"; do
  compgen -G "$fragments_dir/$scenario*.json" >/dev/null || failed+=("$scenario (no fragment)")
done
((${#failed[@]} == 0)) || { echo "failed: ${failed[*]}" >&2; exit 1; }
