#!/usr/bin/env bash
# Tests of the Helm chart in charts/stytch-sso-operator.
#
#   hack/chart-test.sh           lint; render defaults, namespaced mode and all options; validate
#                                every manifest against Kubernetes' own schemas; check the RBAC
#                                and that the chart ships the generated CRD. No cluster needed.
#   hack/chart-test.sh cluster   install the chart on the control plane of $KUBECONFIG and check
#                                what its ServiceAccount may and may not do. Leaves the release
#                                installed and writes that identity's kubeconfig to
#                                .local/chart-test/sa-kubeconfig.
#   hack/chart-test.sh all       both.
#
# Prints one line per check and exits non-zero at the first failure. Uses helm from
# hack/local-cluster.sh, and kubernetes-validate (PyPI) in a venv under .local/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

CHART=charts/stytch-sso-operator
OUT=$PWD/.local/chart-test
VENV=$PWD/.local/chart-test-venv
RELEASE=stytch-sso-operator
NAMESPACE=stytch-system
CREDENTIALS=stytch-credentials

mkdir -p "$OUT"

PASSED=0
pass() { echo "ok    $*"; PASSED=$((PASSED + 1)); }
die() { echo "FAIL  $*" >&2; exit 1; }

# Runs a command quietly; on failure prints what it said and stops. The command runs in a
# subshell with errexit in force (an `if` would switch it off inside functions).
check() { # description, command...
  local what=$1; shift
  local log=$OUT/last.log rc
  set +e
  (set -e; "$@") >"$log" 2>&1
  rc=$?
  set -e
  if [[ $rc == 0 ]]; then
    pass "$what"
  else
    { grep -v 'found symbolic link in path' "$log" || true; } | tail -40 | sed 's/^/      /' >&2
    die "$what"
  fi
}

setup_helm() {
  HELM=$(hack/local-cluster.sh bin helm)
  if [[ ! -x $HELM ]]; then
    hack/local-cluster.sh build helm
  fi
}

setup_validator() {
  if ! "$VENV/bin/python" -c 'import kubernetes_validate, yaml' 2>/dev/null; then
    echo "installing kubernetes-validate into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet 'kubernetes-validate>=1.37,<2'
  fi
}

# The checks that read rendered manifests, in Python: `py CHECK FILE [ARGS]`.
py() {
  "$VENV/bin/python" - "$@" <<'PY'
import sys

import kubernetes_validate
import yaml

CUSTOM_KINDS = {"ServiceMonitor"}  # kinds of CRDs that Kubernetes' schemas do not describe
GROUP = "sso.stytch-operator.dev"
WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection", "*"}


def load(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def fail(message):
    print(message, file=sys.stderr)
    sys.exit(1)


def validate(*paths):
    version = kubernetes_validate.latest_version()
    checked = skipped = 0
    for path in paths:
        for doc in load(path):
            name = f"{doc['kind']}/{doc['metadata']['name']}"
            if doc["kind"] in CUSTOM_KINDS:
                print(f"skipped {name}: a custom resource, no schema in Kubernetes")
                skipped += 1
                continue
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as e:
                fail(f"{path}: {name} is invalid for Kubernetes {version}: {e.message} "
                     f"at {'/'.join(map(str, e.path))}")
            checked += 1
    print(f"{checked} manifests valid for Kubernetes {version}, {skipped} custom resources skipped")


def grants(rule, group, resource, verb, name=None):
    return (group in rule.get("apiGroups", []) and resource in rule.get("resources", [])
            and verb in rule.get("verbs", [])
            and (not rule.get("resourceNames") or name in rule["resourceNames"]))


def granted(role, group, resource, verb, name=None):
    return any(grants(r, group, resource, verb, name) for r in role.get("rules", []))


def needed_rules_present(role):
    needed = [(GROUP, "oidcconnections", v) for v in ("get", "list", "watch", "patch")]
    needed += [(GROUP, "oidcconnections/status", v) for v in ("get", "patch")]
    needed += [(GROUP, "oidcconnections/finalizers", "update")]
    needed += [("", "secrets", v) for v in ("get", "list", "watch")]
    needed += [("events.k8s.io", "events", "create")]
    missing = [n for n in needed if not granted(role, *n)]
    if missing:
        fail(f"{role['kind']} {role['metadata']['name']} lacks {missing}")


def by_kind(docs, kind):
    return [d for d in docs if d["kind"] == kind]


def bound_to_service_account(docs, binding_kind, role_name, namespace, sa, sa_namespace):
    for b in by_kind(docs, binding_kind):
        if (b["roleRef"]["name"] == role_name
                and b["metadata"].get("namespace") == namespace
                and {"kind": "ServiceAccount", "name": sa, "namespace": sa_namespace}
                in b["subjects"]):
            return True
    fail(f"no {binding_kind} binds {role_name} to {sa_namespace}/{sa}")


def common_rbac(docs):
    """Nothing grants a wildcard, and nothing may write Secrets."""
    for role in by_kind(docs, "ClusterRole") + by_kind(docs, "Role"):
        for rule in role["rules"]:
            for key in ("apiGroups", "resources", "verbs"):
                if "*" in rule.get(key, []):
                    fail(f"{role['kind']} {role['metadata']['name']} uses a wildcard in {key}")
            if "secrets" in rule.get("resources", []) and WRITE_VERBS & set(rule["verbs"]):
                fail(f"{role['kind']} {role['metadata']['name']} may write Secrets")


def leader_election_roles(docs):
    return [r for r in by_kind(docs, "Role") if granted(r, "coordination.k8s.io", "leases", "create")]


def rbac_cluster_wide(path, namespace, sa):
    docs = load(path)
    common_rbac(docs)
    roles = [r for r in by_kind(docs, "ClusterRole") if granted(r, GROUP, "oidcconnections", "list")]
    if len(roles) != 1:
        fail(f"expected one ClusterRole on oidcconnections, found {len(roles)}")
    needed_rules_present(roles[0])
    bound_to_service_account(docs, "ClusterRoleBinding", roles[0]["metadata"]["name"], None,
                             sa, namespace)
    if by_kind(docs, "Role") and not leader_election_roles(docs):
        fail("a Role other than leader election's is rendered in cluster-wide mode")
    print(f"ClusterRole {roles[0]['metadata']['name']} grants what the operator needs")


def rbac_namespaced(path, namespace, sa, credentials, *watched):
    docs = load(path)
    common_rbac(docs)
    cluster_wide = by_kind(docs, "ClusterRole") + by_kind(docs, "ClusterRoleBinding")
    if cluster_wide:
        fail(f"namespaced mode renders {cluster_wide[0]['kind']} "
             f"{cluster_wide[0]['metadata']['name']}")
    for ns in watched:
        roles = [r for r in by_kind(docs, "Role") if r["metadata"]["namespace"] == ns
                 and granted(r, GROUP, "oidcconnections", "list")]
        if len(roles) != 1:
            fail(f"expected one Role on oidcconnections in namespace {ns}, found {len(roles)}")
        needed_rules_present(roles[0])
        bound_to_service_account(docs, "RoleBinding", roles[0]["metadata"]["name"], ns, sa,
                                 namespace)
    if namespace not in watched:
        creds = [r for r in by_kind(docs, "Role") if r["metadata"]["namespace"] == namespace
                 and granted(r, "", "secrets", "get", credentials)]
        if len(creds) != 1 or granted(creds[0], "", "secrets", "get", "another-secret"):
            fail(f"expected one Role reading only Secret {namespace}/{credentials}")
        bound_to_service_account(docs, "RoleBinding", creds[0]["metadata"]["name"], namespace,
                                 sa, namespace)
    print(f"Roles in {', '.join(watched)}; no ClusterRole or ClusterRoleBinding")


def leader_election(path, expected, namespace, lease):
    docs = load(path)
    roles = leader_election_roles(docs)
    if expected == "absent":
        if roles:
            fail("a leader-election Role is rendered while leaderElection.enabled is false")
        print("no leader-election Role")
        return
    if len(roles) != 1 or roles[0]["metadata"]["namespace"] != namespace:
        fail(f"expected one leader-election Role in namespace {namespace}")
    for verb in ("get", "update", "patch"):
        if not granted(roles[0], "coordination.k8s.io", "leases", verb, lease):
            fail(f"the leader-election Role lacks {verb} on Lease {lease}")
    if granted(roles[0], "coordination.k8s.io", "leases", "update", "another-lease"):
        fail("the leader-election Role may update any Lease, not only its own")
    print(f"leader-election Role in {namespace} on Lease {lease}")


def deployment(path, *expected_args):
    docs = load(path)
    [deploy] = by_kind(docs, "Deployment")
    pod = deploy["spec"]["template"]["spec"]
    [container] = pod["containers"]
    missing = [a for a in expected_args if a not in container["args"]]
    if missing:
        fail(f"the container's args {container['args']} lack {missing}")
    psc, sc = pod["securityContext"], container["securityContext"]
    hardened = (psc.get("runAsNonRoot") is True and psc.get("runAsUser") == 65532
                and psc.get("seccompProfile", {}).get("type") == "RuntimeDefault"
                and sc.get("readOnlyRootFilesystem") is True
                and sc.get("allowPrivilegeEscalation") is False
                and sc.get("capabilities", {}).get("drop") == ["ALL"])
    if not hardened:
        fail(f"the security contexts are not hardened: pod {psc}, container {sc}")
    probes = {(p["httpGet"]["path"], p["httpGet"]["port"])
              for p in (container["livenessProbe"], container["readinessProbe"])}
    if probes != {("/healthz", "http-metrics"), ("/readyz", "http-metrics")}:
        fail(f"unexpected probes {probes}")
    port = next(p["containerPort"] for p in container["ports"] if p["name"] == "http-metrics")
    if f"--metrics-bind-address=0.0.0.0:{port}" not in container["args"]:
        fail("the metrics port and --metrics-bind-address differ")
    env = {e["name"]: e for e in container["env"]}
    for name, field in (("POD_NAME", "metadata.name"), ("POD_NAMESPACE", "metadata.namespace")):
        if env.get(name, {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") != field:
            fail(f"{name} is not taken from the downward API's {field}")
    print(f"Deployment args, security contexts, probes and env as expected")


def kinds(path, *expected):
    present = {d["kind"] for d in load(path)}
    missing = set(expected) - present
    if missing:
        fail(f"{path} lacks {sorted(missing)}")
    print(f"renders {', '.join(expected)}")


def same_crds(chart_crds, generated):
    chart, gen = load(chart_crds), load(generated)
    if chart != gen:
        fail(f"the chart's CRDs ({chart_crds}) differ from the generated {generated}")
    print(f"{len(chart)} CRD(s) identical")


globals()[sys.argv[1].replace("-", "_")](*sys.argv[2:])
PY
}

render() { # output name, helm template args...
  local name=$1; shift
  "$HELM" template "$RELEASE" "$CHART" --namespace "$NAMESPACE" "$@" >"$OUT/$name.yaml"
}

# Renders that must fail, with an error naming the value to fix.
render_fails() { # expected text in the error, helm template args...
  local expected=$1; shift
  if "$HELM" template "$RELEASE" "$CHART" --namespace "$NAMESPACE" "$@" >/dev/null 2>"$OUT/err.log"; then
    echo "rendered although it should not have"
    return 1
  fi
  grep -v 'found symbolic link' "$OUT/err.log" || true
  grep -qF -- "$expected" "$OUT/err.log"
}

write_all_options_values() {
  cat >"$OUT/values-all-options.yaml" <<YAML
credentials: { existingSecret: $CREDENTIALS }
image: { digest: "sha256:$(printf 'ab%.0s' {1..32})", pullPolicy: Always }
imagePullSecrets: [{ name: registry }]
replicas: 2
leaderElection: { enabled: true, namespace: stytch-leases, id: stytch-sso-operator-a, leaseDuration: 30s }
stytch: { baseUrl: "https://stytch-proxy.internal:8443" }
resyncInterval: 1h30m
backoffCap: 2m
rateLimit: { requestsPerSecond: 5, burst: 8 }
concurrency: 4
logLevel: "debug,kube=info"
logFormat: json
watchNamespaces: [team-a, team-b]
labelSelector: "sso.stytch-operator.dev/shard in (a, b)"
serviceAccount: { annotations: { example.com/role: operator } }
metrics:
  port: 9090
  service: { annotations: { example.com/scrape: "true" } }
  serviceMonitor: { enabled: true, labels: { release: prometheus }, honorLabels: true }
networkPolicy:
  enabled: true
  metricsFrom: [{ namespaceSelector: { matchLabels: { kubernetes.io/metadata.name: monitoring } } }]
podDisruptionBudget: { enabled: true, minAvailable: 1, maxUnavailable: null }
extraEnv: [{ name: HTTPS_PROXY, value: "http://proxy:3128" }]
podAnnotations: { example.com/team: identity }
podLabels: { team: identity }
priorityClassName: system-cluster-critical
tolerations: [{ key: dedicated, operator: Equal, value: operators, effect: NoSchedule }]
affinity:
  podAntiAffinity:
    preferredDuringSchedulingIgnoredDuringExecution:
      - weight: 100
        podAffinityTerm:
          topologyKey: kubernetes.io/hostname
          labelSelector: { matchLabels: { app.kubernetes.io/name: stytch-sso-operator } }
YAML
}

static_checks() {
  setup_helm
  setup_validator
  local creds=(--set "credentials.existingSecret=$CREDENTIALS")

  # (a) lint
  check "helm lint --strict (defaults + credentials.existingSecret)" \
    "$HELM" lint --strict "$CHART" "${creds[@]}"
  write_all_options_values
  check "helm lint --strict (all options)" "$HELM" lint --strict "$CHART" -f "$OUT/values-all-options.yaml"

  # (b) render and validate
  check "render: defaults (with CRDs)" render defaults "${creds[@]}" --include-crds
  check "render: namespaced mode (watchNamespaces: [a, b])" \
    render namespaced "${creds[@]}" --set 'watchNamespaces={a,b}'
  check "render: all options" render all-options -f "$OUT/values-all-options.yaml"
  check "render: leader election off" \
    render no-leader-election "${creds[@]}" --set leaderElection.enabled=false
  check "render: no RBAC, existing ServiceAccount" render no-rbac "${creds[@]}" \
    --set rbac.create=false --set serviceAccount.create=false --set serviceAccount.name=operator
  for name in defaults namespaced all-options no-leader-election no-rbac; do
    check "kubernetes-validate: $name" py validate "$OUT/$name.yaml"
  done
  check "all options render ServiceMonitor, NetworkPolicy, PodDisruptionBudget" \
    py kinds "$OUT/all-options.yaml" ServiceMonitor NetworkPolicy PodDisruptionBudget Service
  check "defaults: Deployment hardened, probes on the metrics port, flags" \
    py deployment "$OUT/defaults.yaml" run \
    "--credentials-secret=$NAMESPACE/$CREDENTIALS" --leader-elect --log-format=text
  check "all options: flags follow the values" py deployment "$OUT/all-options.yaml" \
    --log-format=json --watch-namespaces=team-a,team-b --resync-interval=1h30m \
    --stytch-rate-limit=5 --stytch-burst=8 --concurrency=4 --backoff-cap=2m \
    --stytch-base-url=https://stytch-proxy.internal:8443 --metrics-bind-address=0.0.0.0:9090 \
    "--label-selector=sso.stytch-operator.dev/shard in (a, b)" \
    --leader-election-namespace=stytch-leases --leader-election-id=stytch-sso-operator-a \
    --leader-election-lease-duration=30s

  # Values that must be refused, with a sentence naming the value.
  check "refused: credentials.existingSecret unset" render_fails "credentials.existingSecret"
  check "refused: a misspelt value (replicaCount)" \
    render_fails "additional properties 'replicaCount' not allowed" "${creds[@]}" --set replicaCount=2
  check "refused: logFormat yaml" render_fails "/logFormat" "${creds[@]}" --set logFormat=yaml
  check "refused: replicas 2 without leader election" render_fails "leaderElection.enabled" \
    "${creds[@]}" --set replicas=2 --set leaderElection.enabled=false
  check "refused: serviceMonitor without the metrics Service" \
    render_fails "metrics.service.enabled" "${creds[@]}" \
    --set metrics.serviceMonitor.enabled=true --set metrics.service.enabled=false

  # (c) RBAC shape
  check "RBAC (defaults): one ClusterRole with the needed rules, bound to the ServiceAccount" \
    py rbac-cluster-wide "$OUT/defaults.yaml" "$NAMESPACE" "$RELEASE"
  check "RBAC (namespaced): Roles in a and b, no ClusterRole at all" \
    py rbac-namespaced "$OUT/namespaced.yaml" "$NAMESPACE" "$RELEASE" "$CREDENTIALS" a b
  check "RBAC (all options): namespaced, credentials readable in the release namespace" \
    py rbac-namespaced "$OUT/all-options.yaml" "$NAMESPACE" "$RELEASE" "$CREDENTIALS" \
    team-a team-b
  check "RBAC: leader-election Role when enabled (defaults)" \
    py leader-election "$OUT/defaults.yaml" present "$NAMESPACE" stytch-sso-operator
  check "RBAC: leader-election Role in leaderElection.namespace" \
    py leader-election "$OUT/all-options.yaml" present stytch-leases stytch-sso-operator-a
  check "RBAC: no leader-election Role when disabled" \
    py leader-election "$OUT/no-leader-election.yaml" absent "$NAMESPACE" stytch-sso-operator
  check "RBAC: rbac.create=false renders no RBAC" \
    bash -c "! grep -qE '^kind: (Cluster)?Role(Binding)?$' '$OUT/no-rbac.yaml'"

  # (d) the chart ships the generated CRD
  check "chart crds/ is a link to the repository's crds/" \
    test "$(readlink -f "$CHART/crds")" = "$(readlink -f crds)"
  "$HELM" show crds "$CHART" >"$OUT/chart-crds.yaml" 2>/dev/null
  check "helm show crds equals crds/*.yaml" \
    py same-crds "$OUT/chart-crds.yaml" crds/oidcconnections.sso.stytch-operator.dev.yaml
  rm -rf "$OUT/package" && mkdir -p "$OUT/package"
  check "helm package" "$HELM" package "$CHART" --destination "$OUT/package"
  tar -xzf "$OUT"/package/*.tgz -C "$OUT/package"
  check "the packaged chart carries the CRD byte for byte" \
    cmp "$OUT/package/stytch-sso-operator/crds/oidcconnections.sso.stytch-operator.dev.yaml" \
    crds/oidcconnections.sso.stytch-operator.dev.yaml
}

# kubectl auth can-i as the chart's ServiceAccount: `can yes|no VERB RESOURCE [flags]`.
can() {
  local want=$1; shift
  local got
  got=$(kubectl --kubeconfig "$OUT/sa-kubeconfig" auth can-i "$@" 2>/dev/null || true)
  [[ $got == "$want" ]] || { echo "can-i $* answered '$got', expected '$want'"; return 1; }
}

write_sa_kubeconfig() { # service account, namespace
  local token server ca
  token=$(kubectl -n "$2" create token "$1" --duration=24h)
  server=$(kubectl config view --minify -o jsonpath='{.clusters[0].cluster.server}')
  ca=$(kubectl config view --minify --raw --flatten \
    -o jsonpath='{.clusters[0].cluster.certificate-authority-data}')
  cat >"$OUT/sa-kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: $server
    certificate-authority-data: $ca
users:
- name: $2/$1
  user:
    token: $token
contexts:
- name: $1
  context: { cluster: local, user: $2/$1, namespace: $2 }
current-context: $1
KC
  chmod 600 "$OUT/sa-kubeconfig"
}

# What the lease library does: create the Lease, read it, renew it with strategic-merge and
# server-side apply patches.
lease_lifecycle() {
  local as_sa=(kubectl --kubeconfig "$OUT/sa-kubeconfig" -n "$NAMESPACE")
  kubectl -n "$NAMESPACE" delete lease stytch-sso-operator --ignore-not-found
  "${as_sa[@]}" create -f - <<LEASE
apiVersion: coordination.k8s.io/v1
kind: Lease
metadata: { name: stytch-sso-operator }
spec: { holderIdentity: chart-test, leaseDurationSeconds: 15 }
LEASE
  "${as_sa[@]}" get lease stytch-sso-operator
  "${as_sa[@]}" patch lease stytch-sso-operator --type strategic \
    -p '{"spec":{"renewTime":"2030-01-01T00:00:00.000000Z"}}'
  "${as_sa[@]}" apply --server-side --field-manager chart-test --force-conflicts -f - <<LEASE
apiVersion: coordination.k8s.io/v1
kind: Lease
metadata: { name: stytch-sso-operator }
spec: { holderIdentity: chart-test-2 }
LEASE
  kubectl -n "$NAMESPACE" delete lease stytch-sso-operator
}

wait_deployed() { # release, namespace
  for _ in $(seq 60); do
    "$HELM" status "$1" -n "$2" -o json 2>/dev/null | grep -q '"status":"deployed"' && return 0
    sleep 1
  done
  "$HELM" status "$1" -n "$2"
  return 1
}

cluster_checks() {
  [[ -n ${KUBECONFIG:-} ]] || die "KUBECONFIG is not set: start a control plane \
(hack/local-cluster.sh up DIR) and export KUBECONFIG=DIR/kubeconfig"
  [[ -f $KUBECONFIG ]] || die "KUBECONFIG=$KUBECONFIG does not exist"
  setup_helm
  PATH=$(dirname "$(hack/kubectl-path.sh)"):$PATH
  check "the control plane answers" kubectl version

  check "namespace $NAMESPACE and a credentials Secret" bash -c "
    kubectl create namespace $NAMESPACE --dry-run=client -o yaml | kubectl apply -f - &&
    kubectl -n $NAMESPACE create secret generic $CREDENTIALS --dry-run=client -o yaml \
      --from-literal=project_id=project-test-00000000-0000-0000-0000-000000000000 \
      --from-literal=secret=secret-test-not-a-real-secret | kubectl apply -f -"
  check "helm upgrade --install $RELEASE -n $NAMESPACE" \
    "$HELM" upgrade --install "$RELEASE" "$CHART" --namespace "$NAMESPACE" \
    --set "credentials.existingSecret=$CREDENTIALS"
  check "release $RELEASE is deployed" wait_deployed "$RELEASE" "$NAMESPACE"
  check "the CRD from crds/ is established" kubectl wait --for=condition=Established \
    crd/oidcconnections.sso.stytch-operator.dev --timeout=60s
  check "token and kubeconfig of ServiceAccount $NAMESPACE/$RELEASE" \
    write_sa_kubeconfig "$RELEASE" "$NAMESPACE"

  local oc=oidcconnections.sso.stytch-operator.dev
  local allowed=(
    "list $oc -A" "watch $oc -A" "get $oc -n identity" "patch $oc -n identity"
    "patch $oc -n identity --subresource=status" "get $oc -n identity --subresource=status"
    "update $oc -n identity --subresource=finalizers"
    "get secrets -n identity" "list secrets -A" "watch secrets -A"
    "create events.events.k8s.io -n identity"
    "create leases.coordination.k8s.io -n $NAMESPACE"
    "update leases.coordination.k8s.io/stytch-sso-operator -n $NAMESPACE"
  )
  local denied=(
    "create secrets -n identity" "update secrets -n identity" "delete secrets -n identity"
    "patch secrets -n $NAMESPACE" "get pods -n identity" "get configmaps -n identity"
    "list configmaps -A" "create $oc -n identity" "delete $oc -n identity"
    "update $oc -n identity" "update $oc -n identity --subresource=status"
    "delete namespaces" "create events -n identity" "patch events.events.k8s.io -n identity"
    "update leases.coordination.k8s.io/another-lease -n $NAMESPACE"
    "create leases.coordination.k8s.io -n identity"
    "get customresourcedefinitions.apiextensions.k8s.io/$oc"
    "list customresourcedefinitions.apiextensions.k8s.io"
  )
  local c
  for c in "${allowed[@]}"; do
    # shellcheck disable=SC2086 # each entry is a list of words
    check "can    $c" can yes $c
  done
  for c in "${denied[@]}"; do
    # shellcheck disable=SC2086
    check "cannot $c" can no $c
  done
  # Real requests, not only authorization reviews: the reads the operator makes at start.
  check "as the ServiceAccount: list OidcConnections in all namespaces" \
    kubectl --kubeconfig "$OUT/sa-kubeconfig" get "$oc" -A
  check "as the ServiceAccount: reading the credentials Secret" \
    kubectl --kubeconfig "$OUT/sa-kubeconfig" -n "$NAMESPACE" get secret "$CREDENTIALS"
  check "as the ServiceAccount: create, get and renew (patch, apply) the Lease" lease_lifecycle

  check "as the ServiceAccount: the operator completes a full reconcile" reconcile_as_service_account

  namespaced_release_checks

  echo "ServiceAccount kubeconfig: $OUT/sa-kubeconfig"
}

# Runs the operator binary with the chart's ServiceAccount identity (and leader election, as the
# chart deploys it) against the fake Stytch, until an OidcConnection is Ready: proof that the
# chart's RBAC is enough for the whole job, not only for the checks above.
reconcile_as_service_account() {
  local bin=${CARGO_TARGET_DIR:-target}/debug
  local operator=$bin/stytch-sso-operator fake=$bin/fake-stytch
  [[ -x $operator && -x $fake ]] || { echo "build first: cargo build --workspace --bins"; return 1; }
  local seed=$OUT/sa-seed.json ready=$OUT/sa-fake-ready.json pids=()
  cat >"$seed" <<JSON
{"projects": [{"project_id": "project-test-00000000-0000-0000-0000-000000000000",
               "secret": "secret-test-not-a-real-secret"}],
 "organizations": [{"organization_id": "organization-test-chart", "slug": "chart",
                    "connections": [{"connection_id": "oidc-connection-test-chart"}]}]}
JSON
  rm -f "$ready"
  "$fake" --listen 127.0.0.1:0 --idp-listen 127.0.0.1:0 --seed "$seed" --ready-file "$ready" \
    >/dev/null 2>"$OUT/sa-fake.log" &
  pids+=($!)
  # shellcheck disable=SC2064 # the pids are known now
  trap "kill ${pids[*]} 2>/dev/null || true" RETURN
  for _ in $(seq 50); do [[ -f $ready ]] && break; sleep 0.2; done
  local api; api=$(sed -n 's/.*"api_url":"\([^"]*\)".*/\1/p' "$ready")
  kubectl create namespace chart-reconcile --dry-run=client -o yaml | kubectl apply -f - >/dev/null
  kubectl -n chart-reconcile create secret generic chart-oidc --from-literal=client_secret=s3cr3t \
    --dry-run=client -o yaml | kubectl apply -f - >/dev/null
  kubectl apply -f - >/dev/null <<YAML
apiVersion: sso.stytch-operator.dev/v1alpha1
kind: OidcConnection
metadata: {name: chart, namespace: chart-reconcile}
spec:
  organizationId: organization-test-chart
  connectionId: oidc-connection-test-chart
  displayName: Reconciled as the chart's ServiceAccount
  clientId: chart-client
  clientSecretRef: {name: chart-oidc, key: client_secret}
  issuer: https://idp.example.test/chart
  authorizationUrl: https://idp.example.test/chart/authorize
  tokenUrl: https://idp.example.test/chart/token
  userinfoUrl: https://idp.example.test/chart/userinfo
  jwksUrl: https://idp.example.test/chart/keys
YAML
  KUBECONFIG=$OUT/sa-kubeconfig POD_NAMESPACE=$NAMESPACE "$operator" run \
    --credentials-secret "$NAMESPACE/$CREDENTIALS" --stytch-base-url "$api" \
    --metrics-bind-address 127.0.0.1:0 --leader-elect >/dev/null 2>"$OUT/sa-operator.log" &
  pids+=($!)
  # shellcheck disable=SC2064 # the pids are known now
  trap "kill ${pids[*]} 2>/dev/null || true" RETURN
  kubectl -n chart-reconcile wait --for=condition=Ready oidcconnection/chart --timeout=60s \
    || { tail -20 "$OUT/sa-operator.log"; return 1; }
  if grep -qi forbidden "$OUT/sa-operator.log"; then
    grep -i forbidden "$OUT/sa-operator.log" | head -5
    return 1
  fi
}

# A second release in namespaced mode proves its Roles reach only the listed namespaces.
namespaced_release_checks() {
  local release=stytch-sso-teams ns=stytch-teams-system
  local sa=$release-stytch-sso-operator oc=oidcconnections.sso.stytch-operator.dev
  check "namespaces for the namespaced release" bash -c "
    for n in $ns team-a team-b team-c; do
      kubectl create namespace \$n --dry-run=client -o yaml | kubectl apply -f -
    done"
  check "helm upgrade --install $release (watchNamespaces: [team-a, team-b])" \
    "$HELM" upgrade --install "$release" "$CHART" --namespace "$ns" \
    --set credentials.existingSecret=teams-credentials --set 'watchNamespaces={team-a,team-b}' \
    --set leaderElection.id=stytch-sso-teams
  check "release $release is deployed" wait_deployed "$release" "$ns"
  local main_kubeconfig=$OUT/sa-kubeconfig
  cp "$main_kubeconfig" "$OUT/sa-kubeconfig.main"
  check "token and kubeconfig of ServiceAccount $ns/$sa" write_sa_kubeconfig "$sa" "$ns"
  cp "$OUT/sa-kubeconfig" "$OUT/sa-kubeconfig.namespaced"
  check "namespaced: can    list $oc in team-a" can yes list "$oc" -n team-a
  check "namespaced: can    patch $oc status in team-b" \
    can yes patch "$oc" --subresource=status -n team-b
  check "namespaced: can    get secrets in team-b" can yes get secrets -n team-b
  check "namespaced: can    get its credentials Secret" \
    can yes get secrets/teams-credentials -n "$ns"
  check "namespaced: cannot get another Secret in $ns" can no get secrets/other -n "$ns"
  check "namespaced: cannot list $oc in team-c" can no list "$oc" -n team-c
  check "namespaced: cannot list $oc in all namespaces" can no list "$oc" -A
  check "namespaced: cannot get secrets in team-c" can no get secrets -n team-c
  # The operator watches the credentials Secret outside the watched namespaces by name.
  local by_name="fieldSelector=metadata.name%3Dteams-credentials"
  check "namespaced: as the ServiceAccount: list its credentials Secret by name" \
    kubectl --kubeconfig "$OUT/sa-kubeconfig" get --raw "/api/v1/namespaces/$ns/secrets?$by_name"
  check "namespaced: as the ServiceAccount: watch its credentials Secret by name" \
    kubectl --kubeconfig "$OUT/sa-kubeconfig" get --raw \
    "/api/v1/namespaces/$ns/secrets?watch=1&timeoutSeconds=1&$by_name"
  check "namespaced: as the ServiceAccount: list OidcConnections in team-a" \
    kubectl --kubeconfig "$OUT/sa-kubeconfig" -n team-a get "$oc"
  check "helm uninstall $release" "$HELM" uninstall "$release" --namespace "$ns"
  mv "$OUT/sa-kubeconfig.main" "$main_kubeconfig"
  rm -f "$OUT/sa-kubeconfig.namespaced"
}

case "${1:-static}" in
  static) static_checks ;;
  cluster) cluster_checks ;;
  all) static_checks; cluster_checks ;;
  *) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
echo "chart-test: $PASSED passed, 0 failed"
