#!/usr/bin/env bash
# A real Kubernetes control plane on loopback (etcd + kube-apiserver), the way envtest runs one.
#
#   hack/local-cluster.sh build        build the pinned binaries that are missing (cached)
#   hack/local-cluster.sh up [DIR]     start etcd and kube-apiserver, write DIR/kubeconfig
#   hack/local-cluster.sh down [DIR]   stop them and remove DIR
#   hack/local-cluster.sh bin NAME     print the path of a cached binary (etcd, kube-apiserver, helm,
#                                      kubectl)
#
# Binaries are built from their Go modules (no prebuilt downloads are possible here) and cached
# under $STYTCH_SSO_CACHE (default ~/.cache/stytch-sso-operator), keyed by version, so only the
# first run on a machine pays for the build. There are no nodes: nothing schedules pods, which
# is fine for an operator that only talks to the API server and to Stytch.
set -euo pipefail

KUBERNETES_VERSION=v1.37.2
STAGING_VERSION=v0.37.2
ETCD_VERSION=v3.6.17
HELM_VERSION=v4.3.2

CACHE=${STYTCH_SSO_CACHE:-$HOME/.cache/stytch-sso-operator}
BIN=$CACHE/bin
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEFAULT_DIR=$REPO_ROOT/.local/cluster
ETCD_PORT=${ETCD_PORT:-23790}
APISERVER_PORT=${APISERVER_PORT:-26443}

log() { echo "local-cluster: $*" >&2; }

binary_path() {
  case "$1" in
    etcd) echo "$BIN/etcd-$ETCD_VERSION" ;;
    kube-apiserver) echo "$BIN/kube-apiserver-$KUBERNETES_VERSION" ;;
    helm) echo "$BIN/helm-$HELM_VERSION" ;;
    kubectl) echo "$BIN/kubectl-$KUBERNETES_VERSION" ;;
    *) log "unknown binary '$1'"; return 1 ;;
  esac
}

build_etcd() {
  local out; out=$(binary_path etcd)
  [[ -x $out ]] && return 0
  log "building etcd $ETCD_VERSION (one time)"
  local mod=$CACHE/src/etcd-$ETCD_VERSION
  rm -rf "$mod" && mkdir -p "$mod"
  cat >"$mod/main.go" <<'GO'
// Command etcd is etcd's own main, built from its Go module.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  # go get reports every module it adds; keep that out of sight unless it fails.
  (cd "$mod" && go mod init local/etcd >/dev/null 2>&1 &&
    { go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >"$mod/go-get.log" 2>&1 ||
      { cat "$mod/go-get.log" >&2; exit 1; }; } &&
    CGO_ENABLED=0 go build -mod=mod -trimpath -ldflags "-s -w" -o "$out.tmp" . &&
    mv "$out.tmp" "$out")
}

build_kube_apiserver() {
  local out; out=$(binary_path kube-apiserver)
  [[ -x $out ]] && return 0
  log "building kube-apiserver $KUBERNETES_VERSION (one time, 10-20 minutes)"
  build_kubernetes_command kube-apiserver "$out"
}

# Only for machines without kubectl on the PATH.
build_kubectl() {
  local out; out=$(binary_path kubectl)
  [[ -x $out ]] && return 0
  log "building kubectl $KUBERNETES_VERSION (one time)"
  build_kubernetes_command kubectl "$out"
}

build_kubernetes_command() { # command, output path
  local command=$1 out=$2
  local mod=$CACHE/src/kubernetes-$KUBERNETES_VERSION
  mkdir -p "$mod"
  local gomod
  gomod=$(go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" |
    sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')
  {
    echo "module local/kubernetes"
    echo
    echo "go 1.26.0"
    echo
    echo "require k8s.io/kubernetes $KUBERNETES_VERSION"
    echo
    # k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces them with local
    # folders; a consumer must point them at the published versions instead.
    grep -oE '^\s+k8s\.io/[a-z0-9-]+ v0\.0\.0$' "$gomod" | awk '{print $1}' | sort -u |
      while read -r m; do echo "replace $m => $m $STAGING_VERSION"; done
  } >"$mod/go.mod"
  local pkg=k8s.io/component-base/version
  local minor; minor=$(echo "$KUBERNETES_VERSION" | cut -d. -f2)
  # Without these, /version reports v0.0.0 and the API server's compatibility checks misread it.
  local ldflags="-s -w -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=1"
  ldflags+=" -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
  (cd "$mod" && CGO_ENABLED=0 go build -mod=mod -trimpath -ldflags "$ldflags" \
    -o "$out.tmp" "k8s.io/kubernetes/cmd/$command" && mv "$out.tmp" "$out")
}

build_helm() {
  local out; out=$(binary_path helm)
  [[ -x $out ]] && return 0
  log "building helm $HELM_VERSION (one time)"
  local gobin=$CACHE/src/helm-$HELM_VERSION
  mkdir -p "$gobin"
  CGO_ENABLED=0 GOBIN=$gobin go install -trimpath -ldflags "-s -w" \
    "helm.sh/helm/v4/cmd/helm@$HELM_VERSION"
  mv "$gobin/helm" "$out"
}

cmd_build() {
  command -v go >/dev/null || { log "Go is required to build the control plane"; exit 1; }
  command -v openssl >/dev/null || { log "openssl is required"; exit 1; }
  mkdir -p "$BIN"
  local what=("$@")
  ((${#what[@]})) || what=(etcd kube-apiserver helm)
  local b
  for b in "${what[@]}"; do "build_${b//-/_}"; done
}

wait_http() { # pid, url, seconds, curl args...
  local pid=$1 url=$2 secs=$3; shift 3
  for _ in $(seq $((secs * 5))); do
    kill -0 "$pid" 2>/dev/null || return 1
    curl -fsS --max-time 2 "$@" "$url" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  return 1
}

make_certificates() {
  local dir=$1
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=local-cluster-ca" \
    -keyout "$dir/ca.key" -out "$dir/ca.crt" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" \
    -keyout "$dir/apiserver.key" -out "$dir/apiserver.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >"$dir/ext"
  openssl x509 -req -in "$dir/apiserver.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
    -CAcreateserial -days 30 -extfile "$dir/ext" -out "$dir/apiserver.crt" 2>/dev/null
  openssl genrsa -out "$dir/sa.key" 2048 2>/dev/null
  openssl rsa -in "$dir/sa.key" -pubout -out "$dir/sa.pub" 2>/dev/null
}

write_kubeconfig() {
  local dir=$1 token=$2
  cat >"$dir/kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: https://127.0.0.1:$APISERVER_PORT
    certificate-authority: $dir/ca.crt
users:
- name: admin
  user:
    token: $token
contexts:
- name: local
  context: { cluster: local, user: admin }
current-context: local
KC
}

port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

cmd_up() {
  local dir=${1:-$DEFAULT_DIR}
  if [[ -f $dir/kube-apiserver.pid ]] && kill -0 "$(cat "$dir/kube-apiserver.pid")" 2>/dev/null; then
    log "already running; kubeconfig: $dir/kubeconfig"
    return 0
  fi
  # Another control plane on these ports would answer the health checks below, and this one
  # would silently talk to its etcd.
  local port
  for port in "$ETCD_PORT" "$((ETCD_PORT + 1))" "$APISERVER_PORT"; do
    if port_in_use "$port"; then
      log "port $port is in use; pick others with ETCD_PORT and APISERVER_PORT"
      exit 1
    fi
  done
  cmd_build etcd kube-apiserver
  rm -rf "$dir" && mkdir -p "$dir/etcd-data"
  dir=$(cd "$dir" && pwd)

  "$(binary_path etcd)" --data-dir "$dir/etcd-data" --unsafe-no-fsync \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" \
    --initial-advertise-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" \
    --initial-cluster "default=http://127.0.0.1:$((ETCD_PORT + 1))" \
    --log-level warn >"$dir/etcd.log" 2>&1 &
  echo $! >"$dir/etcd.pid"
  wait_http "$(cat "$dir/etcd.pid")" "http://127.0.0.1:$ETCD_PORT/health" 30 ||
    { log "etcd did not start; see $dir/etcd.log"; tail -20 "$dir/etcd.log" >&2; exit 1; }

  make_certificates "$dir"
  local token; token=$(openssl rand -hex 24)
  echo "$token,admin,admin,system:masters" >"$dir/tokens.csv"
  "$(binary_path kube-apiserver)" \
    --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$APISERVER_PORT" \
    --tls-cert-file "$dir/apiserver.crt" --tls-private-key-file "$dir/apiserver.key" \
    --client-ca-file "$dir/ca.crt" \
    --token-auth-file "$dir/tokens.csv" --authorization-mode RBAC \
    --service-account-issuer https://kubernetes.default.svc \
    --service-account-key-file "$dir/sa.pub" --service-account-signing-key-file "$dir/sa.key" \
    --service-cluster-ip-range 10.0.0.0/24 --allow-privileged=true \
    --endpoint-reconciler-type none \
    >"$dir/kube-apiserver.log" 2>&1 &
  echo $! >"$dir/kube-apiserver.pid"
  wait_http "$(cat "$dir/kube-apiserver.pid")" "https://127.0.0.1:$APISERVER_PORT/readyz" 90 --cacert "$dir/ca.crt" \
    -H "Authorization: Bearer $token" ||
    { log "kube-apiserver did not become ready; see $dir/kube-apiserver.log";
      tail -20 "$dir/kube-apiserver.log" >&2; exit 1; }
  write_kubeconfig "$dir" "$token"
  log "ready; export KUBECONFIG=$dir/kubeconfig"
}

cmd_down() {
  local dir=${1:-$DEFAULT_DIR}
  for p in kube-apiserver etcd; do
    if [[ -f $dir/$p.pid ]]; then
      local pid; pid=$(cat "$dir/$p.pid")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
    fi
  done
  rm -rf "$dir"
}

case "${1:-}" in
  build) shift; cmd_build "$@" ;;
  up) shift; cmd_up "$@" ;;
  down) shift; cmd_down "$@" ;;
  bin) binary_path "$2" ;;
  *) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
