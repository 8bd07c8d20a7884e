#!/usr/bin/env bash
# The demo: a local control plane, the fake Stytch, the operator, and examples/ applied.
#
#   hack/demo.sh         start everything (rebuilding what is missing) and show the result
#   hack/demo.sh stop    stop everything the demo started
#
# Everything runs on loopback; state lives in .local/ and is thrown away by `stop`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

demo_dir=$PWD/.local/demo
bin=${CARGO_TARGET_DIR:-$PWD/target}/debug
cluster_dir=$PWD/.local/cluster
fake_listen=127.0.0.1:18080
idp_listen=127.0.0.1:18443
project_id=$(sed -n 's/.*"project_id": "\([^"]*\)".*/\1/p' hack/demo-seed.json)
project_secret=$(sed -n 's/.*"secret": "\([^"]*\)".*/\1/p' hack/demo-seed.json)

# Stops a process the demo started and waits until it is gone, so that its port is free for
# the next start.
stop_process() {
  local pidfile=$demo_dir/$1.pid pid
  if [[ -f $pidfile ]]; then
    pid=$(cat "$pidfile")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}

if [[ ${1:-} == stop ]]; then
  stop_process operator
  stop_process fake-stytch
  hack/local-cluster.sh down "$cluster_dir"
  rm -rf "$demo_dir"
  echo "demo stopped"
  exit 0
fi

hack/install-prerequisites.sh
hack/local-cluster.sh up "$cluster_dir"
export KUBECONFIG=$cluster_dir/kubeconfig
PATH=$(dirname "$(hack/kubectl-path.sh)"):$PATH
echo "==> building the operator and the fake Stytch"
cargo build --workspace --bins --locked --quiet
mkdir -p "$demo_dir"

echo "==> starting the fake Stytch on http://$fake_listen (its identity provider on https://localhost:${idp_listen#*:})"
stop_process fake-stytch
rm -f "$demo_dir/fake-ready.json"
"$bin/fake-stytch" --listen "$fake_listen" --idp-listen "$idp_listen" \
  --seed hack/demo-seed.json --ready-file "$demo_dir/fake-ready.json" \
  >/dev/null 2>"$demo_dir/fake-stytch.log" &
echo $! >"$demo_dir/fake-stytch.pid"
for _ in $(seq 50); do [[ -f $demo_dir/fake-ready.json ]] && break; sleep 0.2; done
[[ -f $demo_dir/fake-ready.json ]] ||
  { echo "the fake did not start:"; tail -5 "$demo_dir/fake-stytch.log"; exit 1; }

echo "==> installing the CRD and the project credentials"
kubectl apply --server-side -f crds/ >/dev/null
kubectl wait --for=condition=Established crd/oidcconnections.sso.stytch-operator.dev --timeout=30s >/dev/null
kubectl create namespace stytch-system --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl -n stytch-system create secret generic stytch-credentials \
  --from-literal=project_id="$project_id" --from-literal=secret="$project_secret" \
  --dry-run=client -o yaml | kubectl apply -f - >/dev/null

echo "==> starting the operator (log: $demo_dir/operator.log)"
stop_process operator
"$bin/stytch-sso-operator" run \
  --credentials-secret stytch-system/stytch-credentials \
  --stytch-base-url "http://$fake_listen" --metrics-bind-address 127.0.0.1:18081 \
  >/dev/null 2>"$demo_dir/operator.log" &
echo $! >"$demo_dir/operator.pid"

echo "==> kubectl apply -f examples/"
kubectl apply -f examples/
kubectl -n identity wait --for=condition=Ready oidcconnections --all --timeout=60s

echo
kubectl -n identity get oidcconnections -o wide
echo
echo "Redirect URL to register at the identity provider, per connection:"
kubectl -n identity get oidcconnections \
  -o custom-columns='NAME:.metadata.name,REDIRECT URL:.status.redirectUrl,REQUEST ID:.status.requestId'
cat <<MSG

Try next:
  export KUBECONFIG=$KUBECONFIG
  kubectl -n identity describe oidcconnection acme-entra      # conditions and Events
  kubectl -n identity patch oidcconnection acme-okta --type merge -p '{"spec":{"displayName":"Acme SSO"}}'
  curl -s http://$fake_listen/_fake/calls | head -c 2000      # what Stytch received (secrets as fingerprints)
  hack/demo.sh stop
MSG
