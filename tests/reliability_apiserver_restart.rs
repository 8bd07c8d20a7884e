//! Reliability when the Kubernetes API server goes away: edits made while the operator cannot
//! reach it are applied once it returns, and the operator's watches recover by themselves (the
//! same operator process throughout).
//!
//! The test runs a control plane of its own, since it stops the API server and etcd (the shared
//! test control plane keeps serving the other tests), in two phases:
//! 1. A second kube-apiserver joins the same etcd; the one the operator talks to stops. Through
//!    the second, every object's spec is edited, a client secret Secret is rotated and an object
//!    with `deletionPolicy: Delete` is deleted. The first API server then returns.
//! 2. The API server and etcd both stop and return; edits made right after are applied.
//!
//! Recovery time is from the API server being ready again to the last edit being applied in
//! the fake Stytch with the object's status current.

mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;
use stytch_sso_operator::crd::OidcConnection;
use support::private_control_plane::{PrivateControlPlane, client_for};
use support::reliability::{
    self, Call, Fragment, Profile, StytchCalls, lost_update, max_calls_per_connection_per_minute,
    seconds, spec_with_identity_provider,
};
use support::*;

const NAMESPACE: &str = "reliability";
const FIRST_SECRETS: [&str; 2] = ["SENTINEL-RESTART-A1-0b1e", "SENTINEL-RESTART-B1-77c2"];
/// Rotated while the API server is down (Secret `oidc-a`) and after it returned (`oidc-b`).
const ROTATED_A: &str = "SENTINEL-RESTART-A2-5d09";
const ROTATED_B: &str = "SENTINEL-RESTART-B2-c4f8";
/// The object deleted while the operator's API server is down.
const DELETED: &str = "o-0";

fn secret_name(index: usize) -> &'static str {
    if index.is_multiple_of(2) {
        "oidc-a"
    } else {
        "oidc-b"
    }
}

fn object(index: usize) -> OidcConnection {
    let policy = if index == 0 { "Delete" } else { "Orphan" };
    let spec = spec_with_identity_provider(
        "https://idp.example.test/restart",
        json!({
            "organizationId": ORGANIZATION_ID,
            "connectionId": format!("conn-{index}"),
            "displayName": format!("Created {index}"),
            "clientId": format!("client-{index}"),
            "clientSecretRef": {"name": secret_name(index), "key": "client_secret"},
            "deletionPolicy": policy,
        }),
    );
    serde_json::from_value(json!({
        "apiVersion": "sso.stytch-operator.dev/v1alpha1",
        "kind": "OidcConnection",
        "metadata": {"name": format!("o-{index}")},
        "spec": spec,
    }))
    .unwrap()
}

/// What still differs between the cluster and the fake (empty when every update arrived):
/// `secrets` maps each Secret name to the client secret it holds now; `deleted` says whether
/// [`DELETED`] was deleted.
async fn differences(
    client: &Client,
    fake: &FakeStytch,
    secrets: &HashMap<&str, &str>,
    deleted: bool,
) -> Result<Vec<String>, kube::Error> {
    let api: Api<OidcConnection> = Api::namespaced(client.clone(), NAMESPACE);
    let objects = api.list(&ListParams::default()).await?.items;
    let connections = reliability::connections(fake).await;
    let mut differences = Vec::new();
    for object in &objects {
        let secret = object.spec.client_secret_ref.as_ref().unwrap();
        let connection = connections.get(&object.spec.connection_id);
        let client_secret = secrets[secret.name.as_str()];
        differences.extend(lost_update(object, connection, client_secret));
    }
    let in_cluster = objects
        .iter()
        .any(|o| o.metadata.name.as_deref() == Some(DELETED));
    if deleted && in_cluster {
        differences.push(format!("{DELETED} is still in the cluster"));
    }
    if deleted == connections.contains_key("conn-0") {
        differences.push(format!("conn-0 of {DELETED} in the fake: {}", !deleted));
    }
    Ok(differences)
}

/// Waits until nothing differs; returns how long after `since` that was.
async fn converged(
    client: &Client,
    fake: &FakeStytch,
    secrets: &HashMap<&str, &str>,
    deleted: bool,
    since: Instant,
    timeout: Duration,
) -> Result<Duration, Vec<String>> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = match differences(client, fake, secrets, deleted).await {
            Ok(left) if left.is_empty() => return Ok(since.elapsed()),
            Ok(left) => left,
            Err(error) => vec![format!("the API server: {error}")],
        };
        if Instant::now() > deadline {
            return Err(left);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn edit_display_names(client: &Client, count: usize, prefix: &str) {
    let api: Api<OidcConnection> = Api::namespaced(client.clone(), NAMESPACE);
    let params = PatchParams::default();
    for index in 1..count {
        let name = format!("o-{index}");
        let body = json!({"spec": {"displayName": format!("{prefix} {index}")}});
        let patch = Patch::Merge(&body);
        retrying("a spec edit", || api.patch(&name, &params, &patch)).await;
    }
}

async fn rotate(client: &Client, name: &str, value: &str) {
    let api: Api<Secret> = Api::namespaced(client.clone(), NAMESPACE);
    let params = PatchParams::default();
    let body = json!({"stringData": {"client_secret": value}});
    let patch = Patch::Merge(&body);
    retrying("a Secret rotation", || api.patch(name, &params, &patch)).await;
}

/// A call to an API server that has just returned may meet a connection it closed when it
/// stopped; such a call is tried again for a few seconds.
async fn retrying<T, F, Fut>(what: &str, mut call: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, kube::Error>>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match call().await {
            Ok(value) => return value,
            Err(error) if Instant::now() < deadline => {
                eprintln!("{what} failed, trying again: {error}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(error) => panic!("{what} failed: {error}"),
        }
    }
}

fn create_secret(plane: &PrivateControlPlane, name: &str, value: &str) {
    let literal = format!("--from-literal=client_secret={value}");
    let args = [
        "-n", NAMESPACE, "create", "secret", "generic", name, &literal,
    ];
    let output = plane.kubectl(&args, None);
    assert!(output.success, "{}", output.stderr);
}

/// Calls that changed something in the fake.
fn writes(calls: &[Call]) -> usize {
    calls.iter().filter(|c| c.method != "GET").count()
}

#[tokio::test]
async fn edits_made_while_the_api_server_is_down_are_applied_once_it_returns() {
    let profile = Profile::from_env();
    let count = profile.pick(10, 100);
    let downtime = profile.pick(Duration::from_secs(3), Duration::from_secs(30));
    let timeout = profile.pick(Duration::from_secs(60), Duration::from_secs(180));

    let plane = PrivateControlPlane::up("apiserver-restart");
    plane.install_crd();
    plane.create_namespace(NAMESPACE);
    create_secret(&plane, "oidc-a", FIRST_SECRETS[0]);
    create_secret(&plane, "oidc-b", FIRST_SECRETS[1]);
    let client = client_for(&plane.kubeconfig).await;
    let ids: Vec<String> = (0..count).map(|i| format!("conn-{i}")).collect();
    let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let fake = FakeStytch::start("reliability-apiserver-restart", &id_refs).await;
    let args = ["--stytch-rate-limit", "1000", "--stytch-burst", "1000"];
    let mut operator = Operator::start_on(&plane.kubeconfig, NAMESPACE, &fake, &args);
    let pid = operator.pid();
    let objects: Api<OidcConnection> = Api::namespaced(client.clone(), NAMESPACE);
    for index in 0..count {
        objects
            .create(&PostParams::default(), &object(index))
            .await
            .unwrap();
    }
    let mut secrets = HashMap::from([("oidc-a", FIRST_SECRETS[0]), ("oidc-b", FIRST_SECRETS[1])]);
    let created = converged(&client, &fake, &secrets, false, Instant::now(), timeout).await;
    assert!(
        created.is_ok(),
        "the objects did not converge at first: {created:?}"
    );
    fake.settle().await;

    // Phase 1: edits through a second API server while the operator's one is down.
    let second = client_for(&plane.add_apiserver("second")).await;
    let before_stop = reliability::calls(&fake).await;
    plane.stop("kube-apiserver");
    let stopped = Instant::now();
    edit_display_names(&second, count, "Edited while down").await;
    rotate(&second, "oidc-a", ROTATED_A).await;
    secrets.insert("oidc-a", ROTATED_A);
    let second_objects: Api<OidcConnection> = Api::namespaced(second.clone(), NAMESPACE);
    second_objects
        .delete(DELETED, &DeleteParams::default())
        .await
        .unwrap();
    tokio::time::sleep(downtime.saturating_sub(stopped.elapsed())).await;
    let writes_while_down = writes(&reliability::calls(&fake).await) - writes(&before_stop);
    let returned = plane.start("kube-apiserver");
    let phase_one = converged(&client, &fake, &secrets, true, returned, timeout).await;
    plane.stop("second");
    let same_process_one = operator.is_running() && operator.pid() == pid;

    // Phase 2: the API server and etcd stop; edits are made as soon as they return.
    plane.stop("kube-apiserver");
    plane.stop("etcd");
    tokio::time::sleep(downtime).await;
    plane.start("etcd");
    let returned = plane.start("kube-apiserver");
    edit_display_names(&client, count, "Edited after return").await;
    rotate(&client, "oidc-b", ROTATED_B).await;
    secrets.insert("oidc-b", ROTATED_B);
    let phase_two = converged(&client, &fake, &secrets, true, returned, timeout).await;
    let same_process_two = operator.is_running() && operator.pid() == pid;

    fake.settle().await;
    let calls = reliability::calls(&fake).await;
    let lost = differences(&client, &fake, &secrets, true).await.unwrap();
    let stytch_calls = StytchCalls::of(&calls);
    // One update per object at creation, and per phase at most one for the spec edit and one
    // for the rotated secret when the operator sees them apart.
    let put_bound = count + 2 * 2 * (count - 1);
    let mut problems: Vec<String> = lost.clone();
    if writes_while_down != 0 {
        problems.push(format!(
            "{writes_while_down} writes reached Stytch while the API server was down"
        ));
    }
    for (phase, result) in [("phase 1", &phase_one), ("phase 2", &phase_two)] {
        if let Err(left) = result {
            problems.push(format!(
                "{phase} did not converge within {timeout:?}: {left:?}"
            ));
        }
    }
    if !(same_process_one && same_process_two) {
        problems.push(format!("the operator (pid {pid}) did not keep running"));
    }
    if stytch_calls.put > put_bound {
        problems.push(format!(
            "{} updates, more than {put_bound}",
            stytch_calls.put
        ));
    }
    let recovery = [&phase_one, &phase_two]
        .iter()
        .filter_map(|result| result.as_ref().ok())
        .max()
        .copied();
    let describe = |result: &Result<Duration, Vec<String>>| match result {
        Ok(took) => format!("{:.3} s", seconds(*took)),
        Err(_) => "not recovered".to_owned(),
    };
    let fragment = Fragment {
        scenario: "apiserver_restart".into(),
        profile,
        faults_injected: vec![
            format!("kube-apiserver stopped for {downtime:?}, edits through a second API server"),
            format!("kube-apiserver and etcd stopped for {downtime:?}"),
        ],
        objects: count,
        updates_lost: lost.len(),
        max_calls_per_object_per_minute: Some(max_calls_per_connection_per_minute(&calls)),
        bound: format!(
            "every edit applied within {timeout:?} of the API server's return, by the same \
             operator process; no write to Stytch while it is down; at most {put_bound} updates"
        ),
        recovery_seconds: recovery.map(seconds),
        stytch_calls,
        passed: problems.is_empty(),
        notes: format!(
            "Recovery from the API server's return to the last edit applied with its status \
             current: {} after the API server alone (edits made while down: {} display names, a \
             rotated Secret read by {} objects, one deletion), {} after etcd and the API server \
             (edits made on return). Operator pid {pid} throughout: {}. {}",
            describe(&phase_one),
            count - 1,
            count.div_ceil(2),
            describe(&phase_two),
            same_process_one && same_process_two,
            problems.join("; ")
        ),
    };
    fragment.write();
    assert!(problems.is_empty(), "{problems:#?}");
}
