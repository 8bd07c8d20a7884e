#!/usr/bin/env bash
# A real Kubernetes control plane on loopback (etcd + kube-apiserver), the way envtest runs one.
#
#   hack/local-cluster.sh build        build the pinned binaries that are missing (cached)
#   hack/local-cluster.sh up [DIR]     start etcd and kube-apiserver, write DIR/kubeconfig
#   hack/local-cluster.sh down [DIR]   stop them (and any added API server) and remove DIR
#   hack/local-cluster.sh bin NAME     print the path of a cached binary (etcd, kube-apiserver, helm,
#                                      kubectl)
#   hack/local-cluster.sh stop DIR etcd|kube-apiserver|NAME   stop one process, keep its data
#   hack/local-cluster.sh start DIR etcd|kube-apiserver|NAME  start it again as it was
#   hack/local-cluster.sh add-apiserver DIR NAME PORT         one more kube-apiserver on DIR's
#                                      etcd, on PORT, with the same token; DIR/NAME.kubeconfig
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

write_kubeconfig() { # dir, token, port, path
  local dir=$1 token=$2 port=$3 path=$4
  cat >"$path" <<KC
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: https://127.0.0.1:$port
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

# Every process of a control plane is started from what DIR records (ports, token, data), so
# that `stop` and `start` can take one of them away and bring it back as it was.
start_etcd() {
  local dir=$1 port; port=$(cat "$dir/etcd.port")
  "$(binary_path etcd)" --data-dir "$dir/etcd-data" --unsafe-no-fsync \
    --listen-client-urls "http://127.0.0.1:$port" \
    --advertise-client-urls "http://127.0.0.1:$port" \
    --listen-peer-urls "http://127.0.0.1:$((port + 1))" \
    --initial-advertise-peer-urls "http://127.0.0.1:$((port + 1))" \
    --initial-cluster "default=http://127.0.0.1:$((port + 1))" \
    --log-level warn >>"$dir/etcd.log" 2>&1 &
  echo $! >"$dir/etcd.pid"
  wait_http "$(cat "$dir/etcd.pid")" "http://127.0.0.1:$port/health" 30 ||
    { log "etcd did not start; see $dir/etcd.log"; tail -20 "$dir/etcd.log" >&2; exit 1; }
}

start_apiserver() { # dir, name (kube-apiserver or an added one)
  local dir=$1 name=$2 port token
  port=$(cat "$dir/$name.port")
  token=$(cut -d, -f1 "$dir/tokens.csv")
  "$(binary_path kube-apiserver)" \
    --etcd-servers "http://127.0.0.1:$(cat "$dir/etcd.port")" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$port" \
    --tls-cert-file "$dir/apiserver.crt" --tls-private-key-file "$dir/apiserver.key" \
    --client-ca-file "$dir/ca.crt" \
    --token-auth-file "$dir/tokens.csv" --authorization-mode RBAC \
    --service-account-issuer https://kubernetes.default.svc \
    --service-account-key-file "$dir/sa.pub" --service-account-signing-key-file "$dir/sa.key" \
    --service-cluster-ip-range 10.0.0.0/24 --allow-privileged=true \
    --endpoint-reconciler-type none \
    >>"$dir/$name.log" 2>&1 &
  echo $! >"$dir/$name.pid"
  wait_http "$(cat "$dir/$name.pid")" "https://127.0.0.1:$port/readyz" 90 --cacert "$dir/ca.crt" \
    -H "Authorization: Bearer $token" ||
    { log "$name did not become ready; see $dir/$name.log";
      tail -20 "$dir/$name.log" >&2; exit 1; }
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
  echo "$ETCD_PORT" >"$dir/etcd.port"
  echo "$APISERVER_PORT" >"$dir/kube-apiserver.port"

  start_etcd "$dir"
  make_certificates "$dir"
  local token; token=$(openssl rand -hex 24)
  echo "$token,admin,admin,system:masters" >"$dir/tokens.csv"
  start_apiserver "$dir" kube-apiserver
  write_kubeconfig "$dir" "$token" "$APISERVER_PORT" "$dir/kubeconfig"
  log "ready; export KUBECONFIG=$dir/kubeconfig"
}

stop_process() { # dir, name
  local pid_file=$1/$2.pid
  [[ -f $pid_file ]] || return 0
  local pid; pid=$(cat "$pid_file")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$pid_file"
}

cmd_down() {
  local dir=${1:-$DEFAULT_DIR}
  local pid_file
  # API servers first (the one `up` started and any added ones), then their etcd.
  for pid_file in "$dir"/*.pid; do
    [[ -f $pid_file && $pid_file != */etcd.pid ]] || continue
    stop_process "$dir" "$(basename "$pid_file" .pid)"
  done
  stop_process "$dir" etcd
  rm -rf "$dir"
}

require_dir() {
  [[ -n ${1:-} && -f $1/etcd.port ]] || { log "no control plane in '${1:-}'"; exit 2; }
}

cmd_stop() { # dir, name
  require_dir "${1:-}"
  stop_process "$1" "${2:?name what to stop: etcd, kube-apiserver or an added API server}"
}

cmd_start() { # dir, name
  require_dir "${1:-}"
  local dir; dir=$(cd "$1" && pwd)
  local name=${2:?name what to start: etcd, kube-apiserver or an added API server}
  if [[ -f $dir/$name.pid ]] && kill -0 "$(cat "$dir/$name.pid")" 2>/dev/null; then
    log "$name is already running"
    return 0
  fi
  case "$name" in
    etcd) start_etcd "$dir" ;;
    *) [[ -f $dir/$name.port ]] || { log "no process '$name' in $dir"; exit 2; }
       start_apiserver "$dir" "$name" ;;
  esac
}

cmd_add_apiserver() { # dir, name, port
  require_dir "${1:-}"
  local dir; dir=$(cd "$1" && pwd)
  local name=${2:?name the API server} port=${3:?give its port}
  [[ $name != etcd && $name != kube-apiserver ]] || { log "'$name' is taken"; exit 2; }
  if port_in_use "$port"; then log "port $port is in use"; exit 1; fi
  echo "$port" >"$dir/$name.port"
  start_apiserver "$dir" "$name"
  write_kubeconfig "$dir" "$(cut -d, -f1 "$dir/tokens.csv")" "$port" "$dir/$name.kubeconfig"
  log "ready; kubeconfig: $dir/$name.kubeconfig"
}

case "${1:-}" in
  build) shift; cmd_build "$@" ;;
  up) shift; cmd_up "$@" ;;
  down) shift; cmd_down "$@" ;;
  stop) shift; cmd_stop "$@" ;;
  start) shift; cmd_start "$@" ;;
  add-apiserver) shift; cmd_add_apiserver "$@" ;;
  bin) binary_path "$2" ;;
  *) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
