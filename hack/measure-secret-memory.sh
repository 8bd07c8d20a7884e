#!/usr/bin/env bash
# Measures the operator's resident memory (RSS) when many unrelated Secrets exist.
#
#   hack/measure-secret-memory.sh
#
# The operator watches Secret *metadata* only (`Api<PartialObjectMeta<Secret>>`), across all
# namespaces, so that a change to a referenced Secret triggers a reconcile without the operator
# ever holding the cluster's secret values. This script checks that claim with figures: it runs
# the release build twice against a control plane of its own, once with no unrelated Secrets
# (baseline) and once with SECRET_COUNT Secrets of SECRET_KIB KiB of random data each, samples
# VmRSS and VmHWM from /proc every 0.5 s while relabelling TOUCH_COUNT of those Secrets
# TOUCH_ROUNDS times (a second round shows whether memory grows per watch event), and
# writes a Markdown table to target/measurements/secret-memory.md.
#
# It is a measurement, not a test: it fails only when something does not run, never on a figure.
#
# Environment (defaults in brackets):
#   SECRET_COUNT [5000]  SECRET_KIB [32]  TOUCH_COUNT [500]  TOUCH_ROUNDS [2]  SAMPLE_SECONDS [20]
#   MEASURE_ETCD_PORT [25798] (and the next port)  MEASURE_APISERVER_PORT [28449]
#
# State and logs go to .local/memory-run/ (kept for inspection); the control plane lives in
# .local/memory-cluster/ and is always stopped at exit.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

SECRET_COUNT=${SECRET_COUNT:-5000}
SECRET_KIB=${SECRET_KIB:-32}
TOUCH_COUNT=${TOUCH_COUNT:-500}
TOUCH_ROUNDS=${TOUCH_ROUNDS:-2}
SAMPLE_SECONDS=${SAMPLE_SECONDS:-20}
# Secrets per file given to one `kubectl create`: big enough to keep the number of kubectl
# processes small, small enough to stay far below any request or memory limit.
BATCH_SIZE=250
# Ports of our own, apart from those of the demo, the tests, the reliability suite and the
# benchmark, so any of those can run at the same time.
export ETCD_PORT=${MEASURE_ETCD_PORT:-25798} APISERVER_PORT=${MEASURE_APISERVER_PORT:-28449}

cluster_dir=$PWD/.local/memory-cluster
run_dir=$PWD/.local/memory-run
out_dir=$PWD/target/measurements
report=$out_dir/secret-memory.md
app_ns=memory-identity   # the operator's credentials, the client secret, the OidcConnection
noise_ns=memory-noise    # the unrelated Secrets
touch_label=memory-measure/touch

log() { echo "==> $*" >&2; }
die() { echo "measure-secret-memory: $*" >&2; exit 1; }

# --- cleanup: whatever happens, leave no process and no control plane behind ------------------

operator_pid='' fake_pid='' touch_pid=''

stop_pid() { # pid: SIGTERM, give it 10 s, then SIGKILL
  local pid=$1
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 0
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_pid "$touch_pid"
  stop_pid "$operator_pid"
  stop_pid "$fake_pid"
  hack/local-cluster.sh down "$cluster_dir" >/dev/null 2>&1 || true
  ((rc == 0)) || echo "measure-secret-memory: failed (exit $rc); logs in $run_dir" >&2
  exit "$rc"
}
trap cleanup EXIT
# Say where a failing command was, since set -e alone stops without a word.
set -o errtrace
trap 'echo "measure-secret-memory: line $LINENO: \"$BASH_COMMAND\" failed" >&2' ERR
# Turn Ctrl-C and SIGTERM into a normal exit, so that the EXIT trap does the cleanup.
trap 'exit 130' INT TERM

# --- small helpers ----------------------------------------------------------------------------

now_ms() { echo $((${EPOCHREALTIME/./} / 1000)); }
mib() { awk -v kb="$1" 'BEGIN { printf "%.1f", kb / 1024 }'; }
status_kb() { # pid field: a field of /proc/PID/status in kB (VmRSS, VmHWM)
  awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"
}
# What the process has received so far on each of its open TCP connections to the API server,
# as "MS LOCAL-ADDRESS BYTES" lines. /proc/PID/io does not count recv(2), which is what tokio
# uses, so this comes from the kernel's TCP info.
received_by_connection() { # pid ms
  ss -Htinp state established "( dport = :$APISERVER_PORT )" 2>/dev/null |
    awk -v pid="pid=$1," -v ms="$2" '
      /users:/ { mine = index($0, pid) > 0; connection = $3; next }
      mine && match($0, /bytes_received:[0-9]+/) {
        print ms, connection, substr($0, RSTART + 15, RLENGTH - 15) }'
}
# From those lines, taken at every sample: the bytes received in all (the last figure seen of
# each connection, so one that closed still counts up to its last sample) and up to CUT ms.
received_totals() { # file cut_ms
  awk -v cut="$2" '
    { if ($3 > all[$2]) all[$2] = $3; if ($1 <= cut && $3 > early[$2]) early[$2] = $3 }
    END { for (c in all) a += all[c]; for (c in early) e += early[c]; print a + 0, e + 0 }' "$1"
}
stytch_calls() { curl -fsS "$api_url/_fake/calls" | grep -o '"seq"' | wc -l; }

# --- build, control plane ---------------------------------------------------------------------

hack/install-prerequisites.sh
log "building the release binaries"
nice -n 10 cargo build --release --workspace --bins --locked --quiet
kubectl_bin=$(hack/kubectl-path.sh)
k() { "$kubectl_bin" "$@"; }

rm -rf "$run_dir" && mkdir -p "$run_dir" "$out_dir"
log "starting a control plane on ports $ETCD_PORT/$APISERVER_PORT ($cluster_dir)"
# A control plane left behind by a killed run would otherwise be reused as it is.
hack/local-cluster.sh down "$cluster_dir"
nice -n 10 hack/local-cluster.sh up "$cluster_dir" 2>"$run_dir/local-cluster.log" ||
  { cat "$run_dir/local-cluster.log" >&2; die "the control plane did not start"; }
export KUBECONFIG=$cluster_dir/kubeconfig
apiserver_pid=$(cat "$cluster_dir/kube-apiserver.pid")
k apply --server-side -f crds/ >/dev/null
k wait --for=condition=Established crd/oidcconnections.sso.stytch-operator.dev --timeout=60s >/dev/null

# --- fake Stytch, credentials, the one OidcConnection -----------------------------------------

project_id=project-test-6f1c5d0e-memory-4a8b-9c3d-000000000001
project_secret=secret-test-memory-only-not-a-real-secret
org_id=organization-test-3b9e7a52-memory-4e11-8f20-0000000000aa
connection_id=oidc-connection-test-1d7c0f3e-memory-4b62-a9d1-000000000001
# The format of hack/demo-seed.json (see fake-stytch/README.md).
cat >"$run_dir/seed.json" <<JSON
{
  "projects": [{"project_id": "$project_id", "secret": "$project_secret"}],
  "organizations": [
    {"organization_id": "$org_id", "slug": "acme",
     "connections": [{"connection_id": "$connection_id", "display_name": "Created in Stytch",
                      "identity_provider": "generic"}]}
  ]
}
JSON

log "starting the fake Stytch"
RUST_LOG=warn target/release/fake-stytch --listen 127.0.0.1:0 --idp-listen 127.0.0.1:0 \
  --seed "$run_dir/seed.json" --ready-file "$run_dir/fake-ready.json" \
  >/dev/null 2>"$run_dir/fake-stytch.log" &
fake_pid=$!
for _ in $(seq 100); do [[ -s $run_dir/fake-ready.json ]] && break; sleep 0.1; done
[[ -s $run_dir/fake-ready.json ]] || die "the fake Stytch did not start; see $run_dir/fake-stytch.log"
api_url=$(sed -n 's/.*"api_url": *"\([^"]*\)".*/\1/p' "$run_dir/fake-ready.json")
issuer_base_url=$(sed -n 's/.*"issuer_base_url": *"\([^"]*\)".*/\1/p' "$run_dir/fake-ready.json")

k create namespace "$app_ns" >/dev/null
k create namespace "$noise_ns" >/dev/null
k -n "$app_ns" create secret generic stytch-credentials \
  --from-literal=project_id="$project_id" --from-literal=secret="$project_secret" >/dev/null
k -n "$app_ns" create secret generic memory-probe-oidc \
  --from-literal=client_secret=memory-client-secret >/dev/null

# Only the issuer is set: the fake discovers the four endpoint URLs from its own issuer, so the
# connection becomes active and the object Ready.
cat >"$run_dir/oidcconnection.yaml" <<YAML
apiVersion: sso.stytch-operator.dev/v1alpha1
kind: OidcConnection
metadata:
  name: memory-probe
  namespace: $app_ns
spec:
  organizationId: $org_id
  connectionId: $connection_id
  identityProvider: okta
  displayName: Memory probe
  issuer: $issuer_base_url/acme
  clientId: memory-probe-client
  clientSecretRef:
    name: memory-probe-oidc
    key: client_secret
YAML

# --- one measurement --------------------------------------------------------------------------

# Results, by run label (baseline, noise).
declare -A ready_s rss_ready_kb rss_min_kb rss_max_kb rss_steady_kb hwm_kb received_before \
  received_during touched touch_s calls_window apiserver_kb samples_n rss_rounds

measure() { # label relabel(0|1): runs the operator, waits for Ready, samples its memory, stops it
  local label=$1 touch=$2
  local samples=$run_dir/samples-$label.tsv

  # A fresh object (deletionPolicy Orphan: no finalizer, nothing called in Stytch), so that
  # Ready is written by this run's operator rather than left over from the previous one.
  k -n "$app_ns" delete oidcconnection memory-probe --ignore-not-found --wait >/dev/null
  k apply -f "$run_dir/oidcconnection.yaml" >/dev/null

  log "[$label] starting the operator (log: $run_dir/operator-$label.log)"
  local start; start=$(now_ms)
  # All namespaces, one replica, whatever the caller's environment says; the metrics server on
  # a free port rather than its default :8080, which may be taken.
  env -u WATCH_NAMESPACES -u LABEL_SELECTOR -u LEADER_ELECT RUST_LOG=info \
    target/release/stytch-sso-operator run \
    --credentials-secret "$app_ns/stytch-credentials" --stytch-base-url "$api_url" \
    --metrics-bind-address 127.0.0.1:0 >"$run_dir/operator-$label.log" 2>&1 &
  operator_pid=$!
  k -n "$app_ns" wait --for=condition=Ready oidcconnection/memory-probe --timeout=180s >/dev/null ||
    { tail -20 "$run_dir/operator-$label.log" >&2; die "[$label] the OidcConnection did not become Ready"; }
  ready_s[$label]=$(awk -v ms=$(($(now_ms) - start)) 'BEGIN { printf "%.1f", ms / 1000 }')
  log "[$label] Ready after ${ready_s[$label]} s; sampling memory for ${SAMPLE_SECONDS} s"

  local calls_before; calls_before=$(stytch_calls)

  # Sample every 0.5 s for SAMPLE_SECONDS, and, when touching, until 5 s after the last relabel,
  # so that the end of the window shows the memory the touches left behind.
  printf 'ms_since_ready\tvmrss_kb\tvmhwm_kb\n' >"$samples"
  local received=$run_dir/received-$label.txt
  local t0 touch_start=0 touch_end=0 touch_cut=999999999 elapsed rss hwm wait_ms i=0
  t0=$(now_ms)
  touch_pid=''
  while :; do
    kill -0 "$operator_pid" 2>/dev/null ||
      { tail -20 "$run_dir/operator-$label.log" >&2; die "[$label] the operator exited"; }
    elapsed=$(($(now_ms) - t0))
    rss=$(status_kb "$operator_pid" VmRSS) hwm=$(status_kb "$operator_pid" VmHWM)
    printf '%s\t%s\t%s\n' "$elapsed" "$rss" "$hwm" >>"$samples"
    received_by_connection "$operator_pid" "$elapsed" >>"$received"

    # The touches: per round, one kubectl patching TOUCH_COUNT Secrets, each a watch event the
    # operator receives and maps to no object; the end of each round is noted (ms since t0).
    # Started 2 s in, so that the window has a before.
    if ((touch > 0 && touch_start == 0 && elapsed >= 2000)); then
      touch_start=$(now_ms) touch_cut=$elapsed
      (
        for round in $(seq "$TOUCH_ROUNDS"); do
          k -n "$noise_ns" label secrets -l "$touch_label=yes" \
            "memory-measure/touched=$label-$t0-$round" --overwrite
          echo $(($(now_ms) - t0)) >>"$run_dir/touch-$label-rounds.txt"
        done
      ) >"$run_dir/touch-$label.log" 2>&1 &
      touch_pid=$!
    fi
    if [[ -n $touch_pid ]] && ! kill -0 "$touch_pid" 2>/dev/null; then
      wait "$touch_pid" || { cat "$run_dir/touch-$label.log" >&2; die "[$label] relabelling failed"; }
      touch_pid='' touch_end=$(now_ms)
    fi
    if ((elapsed >= SAMPLE_SECONDS * 1000)) && [[ -z $touch_pid ]] &&
      ((touch == 0 || $(now_ms) - touch_end >= 5000)); then
      break
    fi
    # On a 0.5 s grid from t0, whatever each round cost.
    i=$((i + 1)) wait_ms=$((t0 + i * 500 - $(now_ms)))
    ((wait_ms <= 0)) || sleep "$(awk -v ms="$wait_ms" 'BEGIN { printf "%.3f", ms / 1000 }')"
  done

  # Before the relabels: start-up, mostly the first LIST of every Secret's metadata.
  local all early
  read -r all early < <(received_totals "$received" "$touch_cut")
  received_before[$label]=$early received_during[$label]=$((all - early))
  calls_window[$label]=$(($(stytch_calls) - calls_before))
  touched[$label]=$(grep -c 'labeled$' "$run_dir/touch-$label.log" 2>/dev/null || true)
  touch_s[$label]=$(awk -v ms=$((touch_end - touch_start)) 'BEGIN { printf "%.1f", ms / 1000 }')
  # RSS before the relabels and after each round: the first sample at or after each moment.
  rss_rounds[$label]=$( { echo "$touch_cut"; cat "$run_dir/touch-$label-rounds.txt" 2>/dev/null || true; } |
    awk -F'\t' 'NR == FNR { at[++n] = $1; next } FNR > 1 { ms[++m] = $1; rss[m] = $2 }
      END {
        for (i = 1; i <= n; i++) {
          for (j = 1; j <= m && ms[j] < at[i]; j++) {}
          printf "%s%.1f", (i > 1 ? " / " : ""), (j <= m ? rss[j] : rss[m]) / 1024
        }
      }' - "$samples")
  apiserver_kb[$label]=$(status_kb "$apiserver_pid" VmRSS)
  # Peak: the kernel refreshes VmHWM only at some unmaps, so a peak can show in a VmRSS sample
  # and not in VmHWM; take the largest of both over all samples and a last VmHWM.
  hwm_kb[$label]=$( { tail -n +2 "$samples" | cut -f2,3 | tr '\t' '\n'; status_kb "$operator_pid" VmHWM; } |
    sort -n | tail -1)

  # Steady RSS: the median of the samples of the last 5 s (10 samples).
  samples_n[$label]=$(($(wc -l <"$samples") - 1))
  rss_steady_kb[$label]=$(tail -n 10 "$samples" | cut -f2 | sort -n |
    awk '{ r[NR] = $1 } END { print (NR % 2) ? r[(NR + 1) / 2] : (r[NR / 2] + r[NR / 2 + 1]) / 2 }')
  rss_ready_kb[$label]=$(sed -n 2p "$samples" | cut -f2)
  rss_min_kb[$label]=$(tail -n +2 "$samples" | cut -f2 | sort -n | head -1)
  rss_max_kb[$label]=$(tail -n +2 "$samples" | cut -f2 | sort -n | tail -1)

  stop_pid "$operator_pid"
  operator_pid=''
  log "[$label] steady RSS $(mib "${rss_steady_kb[$label]}") MiB, peak $(mib "${hwm_kb[$label]}") MiB"
}

measure baseline 0

# --- the unrelated Secrets --------------------------------------------------------------------

# One v1 List of BATCH_SIZE Secrets per file, each with SECRET_KIB KiB of random bytes (so that
# nothing compresses them), the first TOUCH_COUNT labelled for relabelling later.
log "generating $SECRET_COUNT Secrets of $SECRET_KIB KiB in files of $BATCH_SIZE"
gen_start=$(now_ms)
for ((first = 0; first < SECRET_COUNT; first += BATCH_SIZE)); do
  file=$run_dir/noise-$(printf '%05d' "$first").json
  {
    printf '{"apiVersion":"v1","kind":"List","items":['
    for ((i = first; i < first + BATCH_SIZE && i < SECRET_COUNT; i++)); do
      ((i == first)) || printf ','
      if ((i < TOUCH_COUNT)); then to_touch=yes; else to_touch=no; fi
      printf '{"apiVersion":"v1","kind":"Secret","type":"Opaque","metadata":{"name":"noise-%05d","namespace":"%s","labels":{"%s":"%s"}},"data":{"blob":"' \
        "$i" "$noise_ns" "$touch_label" "$to_touch"
      head -c $((SECRET_KIB * 1024)) /dev/urandom | base64 -w0
      printf '"}}'
    done
    printf ']}\n'
  } >"$file"
done
gen_s=$(awk -v ms=$(($(now_ms) - gen_start)) 'BEGIN { printf "%.1f", ms / 1000 }')

log "creating them (two kubectl at a time)"
create_start=$(now_ms)
printf '%s\n' "$run_dir"/noise-*.json |
  nice -n 10 xargs -P 2 -I{} "$kubectl_bin" create -o name -f {} >"$run_dir/created.txt"
create_s=$(awk -v ms=$(($(now_ms) - create_start)) 'BEGIN { printf "%.1f", ms / 1000 }')
rm -f "$run_dir"/noise-*.json
# The default output is a server-side table (names only), so counting does not fetch the data.
in_cluster=$(k -n "$noise_ns" get secrets --no-headers | wc -l)
((in_cluster == SECRET_COUNT)) || die "expected $SECRET_COUNT Secrets in $noise_ns, found $in_cluster"
log "$in_cluster Secrets created in $create_s s (generated in $gen_s s)"

measure noise $((TOUCH_COUNT > 0))

# --- the report -------------------------------------------------------------------------------

data_mib=$(awk -v n="$SECRET_COUNT" -v k="$SECRET_KIB" 'BEGIN { printf "%.1f", n * k / 1024 }')
relabel_mib=$(awk -v n=$((TOUCH_COUNT * TOUCH_ROUNDS)) -v k="$SECRET_KIB" \
  'BEGIN { printf "%.1f", n * k * 4 / 3 / 1024 }')
kib() { awk -v b="$1" 'BEGIN { printf "%.0f KiB", b / 1024 }'; }
thousands() { sed -e ':a' -e 's/\B[0-9]\{3\}\>/,&/' -e 'ta' <<<"$1"; } # 5000 -> 5,000
count=$(thousands "$SECRET_COUNT")
b=baseline n=noise
if commit=$(git rev-parse --short HEAD 2>/dev/null); then
  git diff --quiet HEAD || commit+=" with uncommitted changes"
else
  commit="a source tree outside Git"
fi
apiserver_version=$(k version -o json 2>/dev/null | sed -n 's/.*"gitVersion": *"\([^"]*\)".*/\1/p' | tail -1)

{
  echo "# Operator memory with unrelated Secrets"
  echo
  echo "Baseline $(mib "${rss_steady_kb[$b]}") MiB, with $count x $SECRET_KIB KiB Secrets" \
    "$(mib "${rss_steady_kb[$n]}") MiB (steady RSS; peak $(mib "${hwm_kb[$b]}") and" \
    "$(mib "${hwm_kb[$n]}") MiB)."
  echo
  echo "| | baseline | with $count x $SECRET_KIB KiB Secrets |"
  echo "| --- | --: | --: |"
  echo "| unrelated Secrets in the cluster | 0 | $(thousands "$in_cluster") ($data_mib MiB of data) |"
  echo "| time from start to Ready | ${ready_s[$b]} s | ${ready_s[$n]} s |"
  echo "| operator RSS at Ready | $(mib "${rss_ready_kb[$b]}") MiB | $(mib "${rss_ready_kb[$n]}") MiB |"
  echo "| operator steady RSS (median of the last 5 s) | $(mib "${rss_steady_kb[$b]}") MiB | $(mib "${rss_steady_kb[$n]}") MiB |"
  echo "| operator RSS range over the window | $(mib "${rss_min_kb[$b]}")-$(mib "${rss_max_kb[$b]}") MiB | $(mib "${rss_min_kb[$n]}")-$(mib "${rss_max_kb[$n]}") MiB |"
  echo "| operator peak RSS (VmHWM or largest VmRSS sample) | $(mib "${hwm_kb[$b]}") MiB | $(mib "${hwm_kb[$n]}") MiB |"
  echo "| samples (every 0.5 s after Ready) | ${samples_n[$b]} | ${samples_n[$n]} |"
  echo "| Secrets relabelled during the window | 0 | $(thousands "${touched[$n]}") ($TOUCH_COUNT x $TOUCH_ROUNDS rounds, ${touch_s[$n]} s) |"
  echo "| operator RSS before the relabels / after each round | - | ${rss_rounds[$n]} MiB |"
  echo "| received from the API server before the relabels | $(kib "${received_before[$b]}") | $(kib "${received_before[$n]}") |"
  echo "| received from the API server during the relabels | - | $(kib "${received_during[$n]}") |"
  echo "| Stytch calls during the window | ${calls_window[$b]} | ${calls_window[$n]} |"
  echo "| kube-apiserver RSS (holds the Secrets) | $(mib "${apiserver_kb[$b]}") MiB | $(mib "${apiserver_kb[$n]}") MiB |"
  echo
  awk -v b="${rss_steady_kb[$b]}" -v n="${rss_steady_kb[$n]}" -v d="$data_mib" 'BEGIN {
    printf "The %s MiB of unrelated Secret data add %.1f MiB to the operator'"'"'s steady RSS.\n", d, (n - b) / 1024 }'
  echo
  echo "Release build of $commit; kube-apiserver $apiserver_version; $(nproc) cores;"
  echo "$(date -u +%Y-%m-%dT%H:%MZ); measured by \`hack/measure-secret-memory.sh\`."
  echo "RSS and VmHWM come from /proc/PID/status, sampled every 0.5 s from Ready on. Bytes received"
  echo "come from the kernel's TCP info for the operator's connections to the API server, at each"
  echo "sample; for comparison, the full Secrets would be $data_mib MiB, and $relabel_mib MiB for the relabels."
  echo "Samples: \`secret-memory-baseline.tsv\`, \`secret-memory-secrets.tsv\` beside this file."
} >"$report"
cp "$run_dir/samples-baseline.tsv" "$out_dir/secret-memory-baseline.tsv"
cp "$run_dir/samples-noise.tsv" "$out_dir/secret-memory-secrets.tsv"

echo
cat "$report"
echo
echo "Written to ${report#"$PWD"/}"
