//! Reliability of deletion: a namespace deleted with Secrets and objects inside, and rapid
//! create/delete churn, leave nothing stuck, and Stytch connections are deleted exactly when
//! `deletionPolicy: Delete` asks for it.
//!
//! The local control plane runs no kube-controller-manager, so nothing empties a deleted
//! namespace. The namespace deletion test therefore **emulates the namespace controller**: it
//! deletes the namespace, then every Secret, `OidcConnection` and Event in it (Secrets first in
//! one namespace, objects first in another, as the controller's order is not fixed), waits for
//! the operator to release its finalizers, and then finalizes the namespace through its
//! `/finalize` subresource, as the controller does once the namespace is empty.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Event, Namespace, Secret};
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};
use stytch_sso_operator::crd::OidcConnection;
use support::reliability::{
    self, Call, Fragment, Profile, StytchCalls, max_calls_per_connection_per_minute, seconds,
    spec_with_identity_provider,
};
use support::*;

const FINALIZER: &str = "sso.stytch-operator.dev/cleanup";
const CLIENT_SECRET: &str = "SENTINEL-DELETION-CLIENT-SECRET-52a1";

/// Spec lines that make a connection active without discovery, with a deletion policy.
fn spec(policy: &str) -> Value {
    spec_with_identity_provider(
        "https://idp.example.test/deletion",
        json!({
            "organizationId": ORGANIZATION_ID,
            "displayName": "Deletion",
            "clientId": "client-deletion",
            "clientSecretRef": {"name": "acme-oidc", "key": "client_secret"},
            "deletionPolicy": policy,
        }),
    )
}

fn object(name: &str, connection_id: &str, policy: &str) -> OidcConnection {
    let mut spec = spec(policy);
    spec["connectionId"] = json!(connection_id);
    serde_json::from_value(json!({
        "apiVersion": "sso.stytch-operator.dev/v1alpha1",
        "kind": "OidcConnection",
        "metadata": {"name": name},
        "spec": spec,
    }))
    .unwrap()
}

fn policy_of(index: usize) -> &'static str {
    if index.is_multiple_of(2) {
        "Delete"
    } else {
        "Orphan"
    }
}

/// DELETE calls the fake received, by connection id.
fn deletes_by_connection(calls: &[Call]) -> BTreeMap<&str, usize> {
    let mut counts = BTreeMap::new();
    for call in calls.iter().filter(|call| call.method == "DELETE") {
        if let Some(connection) = call.connection_id() {
            *counts.entry(connection).or_default() += 1;
        }
    }
    counts
}

/// How many objects of `namespace` are left.
async fn objects_left(client: &Client, namespace: &str) -> usize {
    let api: Api<OidcConnection> = Api::namespaced(client.clone(), namespace);
    api.list(&ListParams::default()).await.unwrap().items.len()
}

/// A namespace with the client secret Secret and `count` objects, every other one with
/// `deletionPolicy: Delete`, for connections `{prefix}-{i}`.
async fn populated_namespace(client: &Client, name: &str, prefix: &str, count: usize) {
    create_namespace(client, name).await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), name);
    let secret = serde_json::from_value(json!({
        "metadata": {"name": "acme-oidc"},
        "stringData": {"client_secret": CLIENT_SECRET},
    }))
    .unwrap();
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let objects: Api<OidcConnection> = Api::namespaced(client.clone(), name);
    for i in 0..count {
        let object = object(&format!("o-{i}"), &format!("{prefix}-{i}"), policy_of(i));
        objects
            .create(&PostParams::default(), &object)
            .await
            .unwrap();
    }
}

/// Waits until every object of `namespace` is Ready for its current generation.
async fn all_ready(client: &Client, namespace: &str, timeout: Duration) {
    let api: Api<OidcConnection> = Api::namespaced(client.clone(), namespace);
    eventually(
        &format!("every object in {namespace} to be Ready"),
        timeout,
        || async {
            let objects = api.list(&ListParams::default()).await.ok()?.items;
            let ready = objects.iter().all(|object| {
                object.status.as_ref().is_some_and(|status| {
                    status.conditions.iter().any(|c| {
                        c.type_ == "Ready"
                            && c.status == "True"
                            && c.observed_generation == object.metadata.generation
                    })
                })
            });
            ready.then_some(())
        },
    )
    .await;
}

/// Removes the `kubernetes` finalizer of a namespace being deleted, as the namespace controller
/// does once the namespace is empty.
async fn finalize(namespaces: &Api<Namespace>, name: &str) {
    let mut namespace = namespaces.get(name).await.unwrap();
    namespace.spec.get_or_insert_default().finalizers = Some(Vec::new());
    namespaces
        .replace_subresource("finalize", name, &PostParams::default(), &namespace)
        .await
        .unwrap();
}

/// What the namespace controller does with a namespace being deleted, in one of its possible
/// orders: delete the namespace's contents, wait until they are gone (here: until the
/// operator released its finalizers), then remove the `kubernetes` finalizer through
/// `/finalize`. Returns how long the namespace took to go.
async fn delete_namespace_as_its_controller_would(
    client: &Client,
    name: &str,
    secrets_first: bool,
    bound: Duration,
) -> Duration {
    let started = Instant::now();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .delete(name, &DeleteParams::default())
        .await
        .unwrap();

    let everything = ListParams::default();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), name);
    let objects: Api<OidcConnection> = Api::namespaced(client.clone(), name);
    let delete = DeleteParams::default();
    if secrets_first {
        secrets
            .delete_collection(&delete, &everything)
            .await
            .unwrap();
        objects
            .delete_collection(&delete, &everything)
            .await
            .unwrap();
    } else {
        objects
            .delete_collection(&delete, &everything)
            .await
            .unwrap();
        secrets
            .delete_collection(&delete, &everything)
            .await
            .unwrap();
    }
    let what = format!("the operator to release the objects of namespace {name}");
    eventually(&what, bound, || async {
        (objects_left(client, name).await == 0).then_some(())
    })
    .await;
    // The operator's Events (or its failed attempts to write them) are content too.
    let events: Api<Event> = Api::namespaced(client.clone(), name);
    events
        .delete_collection(&delete, &everything)
        .await
        .unwrap();

    finalize(&namespaces, name).await;
    let what = format!("namespace {name} to be gone");
    let remaining = bound.saturating_sub(started.elapsed());
    eventually(&what, remaining, || async {
        namespaces
            .get_opt(name)
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
    started.elapsed()
}

#[tokio::test]
async fn a_namespace_deleted_with_secrets_and_objects_inside_goes_away() {
    let profile = Profile::from_env();
    let per_namespace = profile.pick(10, 100);
    let bound = profile.pick(Duration::from_secs(30), Duration::from_secs(120));
    install_crd();
    // The operator's own namespace, holding the project credentials, as in a real install.
    let home = TestNamespace::create("rel-ns-home").await;
    let client = home.client.clone();
    let suffix = home.name.rsplit('-').next().unwrap().to_owned();
    let orders = [
        (format!("rel-ns-secrets-first-{suffix}"), true),
        (format!("rel-ns-objects-first-{suffix}"), false),
    ];
    let connection_ids: Vec<String> = orders
        .iter()
        .flat_map(|(namespace, _)| (0..per_namespace).map(move |i| format!("{namespace}-{i}")))
        .collect();
    let connection_refs: Vec<&str> = connection_ids.iter().map(String::as_str).collect();
    let fake = FakeStytch::start(&home.name, &connection_refs).await;
    for (namespace, _) in &orders {
        populated_namespace(&client, namespace, namespace, per_namespace).await;
    }
    let mut args = vec!["--stytch-rate-limit", "1000", "--stytch-burst", "1000"];
    for (namespace, _) in &orders {
        args.extend(["--watch-namespaces", namespace.as_str()]);
    }
    let _operator = home.start_operator_with(&fake, &args);
    for (namespace, _) in &orders {
        all_ready(&client, namespace, bound).await;
    }
    let before = reliability::calls(&fake).await.len();

    let mut problems = Vec::new();
    let mut slowest = Duration::ZERO;
    let deletions = orders.iter().map(|(namespace, secrets_first)| {
        delete_namespace_as_its_controller_would(&client, namespace, *secrets_first, bound)
    });
    for (took, (namespace, _)) in futures::future::join_all(deletions)
        .await
        .into_iter()
        .zip(&orders)
    {
        eprintln!("namespace {namespace} went in {took:?}");
        slowest = slowest.max(took);
    }

    let calls = reliability::calls(&fake).await;
    let deletes = deletes_by_connection(&calls[before..]);
    let mut updates_lost = 0;
    for (namespace, _) in &orders {
        for i in 0..per_namespace {
            let connection_id = format!("{namespace}-{i}");
            let deleted = deletes.get(connection_id.as_str()).copied().unwrap_or(0);
            let exists = fake.find_connection(&connection_id).await.is_some();
            let expected = usize::from(policy_of(i) == "Delete");
            if deleted != expected || exists == (expected == 1) {
                updates_lost += 1;
                problems.push(format!(
                    "{connection_id} ({}): {deleted} DELETE calls, still in the fake: {exists}",
                    policy_of(i)
                ));
            }
        }
    }
    let fragment = Fragment {
        scenario: "deletion_namespace".into(),
        profile,
        faults_injected: vec![
            "namespace deleted with Secrets deleted before the objects".into(),
            "namespace deleted with objects deleted before the Secrets".into(),
        ],
        objects: 2 * per_namespace,
        updates_lost,
        max_calls_per_object_per_minute: Some(max_calls_per_connection_per_minute(&calls)),
        bound: format!(
            "each namespace gone within {bound:?}; exactly one DELETE call per Delete-policy \
             connection, none for Orphan"
        ),
        recovery_seconds: Some(seconds(slowest)),
        stytch_calls: StytchCalls::of(&calls),
        passed: problems.is_empty() && slowest <= bound,
        notes: format!(
            "The namespace controller is emulated (no kube-controller-manager runs): the test \
             deletes the namespace, its Secrets, objects and Events, waits for the operator to \
             release the finalizers, then calls /finalize. Half the objects use deletionPolicy \
             Delete, half Orphan; the project credentials live in the operator's namespace. \
             Recovery is the slowest namespace's deletion. {}",
            problems.join("; ")
        ),
    };
    fragment.write();
    assert!(problems.is_empty(), "{problems:#?}");
    assert!(
        slowest <= bound,
        "a namespace took {slowest:?}, over {bound:?}"
    );
}

#[tokio::test]
async fn objects_reading_credentials_from_a_namespace_being_deleted_say_why_they_stay() {
    let profile = Profile::from_env();
    let count = 4;
    install_crd();
    let home = TestNamespace::create("rel-ns-credentials-home").await;
    let client = home.client.clone();
    let suffix = home.name.rsplit('-').next().unwrap().to_owned();
    let doomed = format!("rel-ns-credentials-inside-{suffix}");
    let connection_ids: Vec<String> = (0..count).map(|i| format!("{doomed}-{i}")).collect();
    let connection_refs: Vec<&str> = connection_ids.iter().map(String::as_str).collect();
    let fake = FakeStytch::start(&home.name, &connection_refs).await;
    populated_namespace(&client, &doomed, &doomed, 0).await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &doomed);
    let credentials = serde_json::from_value(json!({
        "metadata": {"name": "project"},
        "stringData": {"project_id": PROJECT_ID, "secret": PROJECT_SECRET},
    }))
    .unwrap();
    secrets
        .create(&PostParams::default(), &credentials)
        .await
        .unwrap();
    let objects: Api<OidcConnection> = Api::namespaced(client.clone(), &doomed);
    for (i, connection_id) in connection_ids.iter().enumerate() {
        let mut object = object(&format!("o-{i}"), connection_id, "Delete");
        object.spec.credentials_ref = serde_json::from_value(json!({"name": "project"})).unwrap();
        objects
            .create(&PostParams::default(), &object)
            .await
            .unwrap();
    }
    let _operator = home.start_operator_with(&fake, &["--watch-namespaces", doomed.as_str()]);
    all_ready(&client, &doomed, Duration::from_secs(30)).await;

    // The namespace controller's order: Secrets first, then the objects.
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .delete(&doomed, &DeleteParams::default())
        .await
        .unwrap();
    let (delete, everything) = (DeleteParams::default(), ListParams::default());
    secrets
        .delete_collection(&delete, &everything)
        .await
        .unwrap();
    let deleted_at = Instant::now();
    objects
        .delete_collection(&delete, &everything)
        .await
        .unwrap();
    // Each must say why it stays and how to let it go.
    let release_hint = "spec.deletionPolicy to Orphan";
    let what = "every object to say why it stays and how to release it";
    eventually(what, Duration::from_secs(30), || async {
        let items = objects.list(&everything).await.ok()?.items;
        let explained = items.iter().filter(|object| {
            let conditions = object.status.as_ref().map(|s| s.conditions.as_slice());
            conditions.unwrap_or_default().iter().any(|c| {
                c.type_ == "Ready"
                    && c.status == "False"
                    && c.reason == "CredentialsNotFound"
                    && c.message.contains(release_hint)
            })
        });
        (items.len() == count && explained.count() == count).then_some(())
    })
    .await;
    let mut problems = Vec::new();

    // What the condition tells the user to do.
    let orphan = json!({"spec": {"deletionPolicy": "Orphan"}});
    for i in 0..count {
        let patch = kube::api::Patch::Merge(&orphan);
        let params = kube::api::PatchParams::default();
        objects
            .patch(&format!("o-{i}"), &params, &patch)
            .await
            .unwrap();
    }
    eventually(
        "the released objects to go",
        Duration::from_secs(30),
        || async { (objects_left(&client, &doomed).await == 0).then_some(()) },
    )
    .await;
    let released = deleted_at.elapsed();
    finalize(&namespaces, &doomed).await;

    let calls = reliability::calls(&fake).await;
    let kept = futures::future::join_all(connection_ids.iter().map(|id| fake.find_connection(id)));
    let kept = kept.await.iter().filter(|c| c.is_some()).count();
    if kept != count {
        problems.push(format!(
            "{} Orphan connections were deleted in Stytch",
            count - kept
        ));
    }
    let fragment = Fragment {
        scenario: "deletion_namespace_credentials_inside".into(),
        profile,
        faults_injected: vec![
            "namespace deleted, Secrets first, with the objects' credentialsRef Secret inside"
                .into(),
        ],
        objects: count,
        updates_lost: count - kept,
        max_calls_per_object_per_minute: Some(max_calls_per_connection_per_minute(&calls)),
        bound: "each object stays with a Credentials... condition that says how to release it; \
                set to Orphan, it goes and its connection stays in Stytch"
            .into(),
        recovery_seconds: Some(seconds(released)),
        stytch_calls: StytchCalls::of(&calls),
        passed: problems.is_empty(),
        notes: format!(
            "A known limitation: deletionPolicy Delete needs the credentials, which went with the \
             namespace. The namespace controller is emulated. Recovery is from the objects' \
             deletion to their release, including the test's switch to Orphan. {}",
            problems.join("; ")
        ),
    };
    fragment.write();
    assert!(problems.is_empty(), "{problems:#?}");
}

/// One create/delete cycle of the churn test, as it went.
struct Cycle {
    connection_id: String,
    policy: &'static str,
    /// The object carried the operator's finalizer when it was deleted, so the operator
    /// owed a DELETE call to Stytch.
    finalizer_at_deletion: bool,
    /// From the delete request to the object being gone.
    took: Duration,
}

/// Creates and deletes objects named `churn-{lane}` one after the other, each for a
/// connection of its own, after a random wait of up to `linger`: some are deleted before the
/// operator saw them, some while it adds its finalizer, some once Ready.
async fn churn_lane(
    namespace: &TestNamespace,
    lane: usize,
    cycles: usize,
    lanes: usize,
    linger: Duration,
    bound: Duration,
) -> Vec<Cycle> {
    let api = namespace.objects();
    let name = format!("churn-{lane}");
    let mut done = Vec::new();
    for cycle in 0..cycles {
        let index = lane + cycle * lanes;
        let connection_id = format!("churn-{index}");
        let policy = policy_of(cycle + lane);
        let object = object(&name, &connection_id, policy);
        api.create(&PostParams::default(), &object).await.unwrap();
        let wait = linger.mul_f64(rand::random::<f64>());
        tokio::time::sleep(wait).await;

        let deleted_at = Instant::now();
        let answer = api.delete(&name, &DeleteParams::default()).await.unwrap();
        let finalizer_at_deletion = answer.left().is_some_and(|object| {
            object.metadata.deletion_timestamp.is_some()
                && object
                    .metadata
                    .finalizers
                    .iter()
                    .flatten()
                    .any(|f| f == FINALIZER)
        });
        let what = format!("{name} (cycle {cycle}, {policy}) to be gone");
        eventually(&what, bound, || async {
            api.get_opt(&name).await.unwrap().is_none().then_some(())
        })
        .await;
        done.push(Cycle {
            connection_id,
            policy,
            finalizer_at_deletion,
            took: deleted_at.elapsed(),
        });
    }
    done
}

#[tokio::test]
async fn rapid_create_and_delete_churn_leaves_nothing_stuck() {
    let profile = Profile::from_env();
    let lanes = 5;
    let cycles = profile.pick(50, 500);
    let bound = Duration::from_secs(30);
    let namespace = TestNamespace::with_client_secret("rel-churn", CLIENT_SECRET).await;
    let connection_ids: Vec<String> = (0..cycles).map(|i| format!("churn-{i}")).collect();
    let connection_refs: Vec<&str> = connection_ids.iter().map(String::as_str).collect();
    let fake = FakeStytch::start(&namespace.name, &connection_refs).await;
    let _operator = namespace.start_operator_with(
        &fake,
        &["--stytch-rate-limit", "1000", "--stytch-burst", "1000"],
    );

    let linger = Duration::from_millis(600);
    let lanes_run =
        (0..lanes).map(|lane| churn_lane(&namespace, lane, cycles / lanes, lanes, linger, bound));
    let done: Vec<Cycle> = futures::future::join_all(lanes_run)
        .await
        .into_iter()
        .flatten()
        .collect();
    fake.settle().await;

    let mut problems = Vec::new();
    let left = namespace
        .objects()
        .list(&Default::default())
        .await
        .unwrap()
        .items;
    for object in &left {
        problems.push(format!(
            "{:?} is left, finalizers {:?}",
            object.metadata.name, object.metadata.finalizers
        ));
    }
    let calls = reliability::calls(&fake).await;
    let deletes = deletes_by_connection(&calls);
    let mut updates_lost = 0;
    for cycle in &done {
        let expected = usize::from(cycle.policy == "Delete" && cycle.finalizer_at_deletion);
        let deleted = deletes
            .get(cycle.connection_id.as_str())
            .copied()
            .unwrap_or(0);
        let exists = fake.find_connection(&cycle.connection_id).await.is_some();
        if deleted != expected || exists == (expected == 1) {
            updates_lost += 1;
            problems.push(format!(
                "{} ({}, finalizer at deletion: {}): {deleted} DELETE calls, still in the fake: \
                 {exists}",
                cycle.connection_id, cycle.policy, cycle.finalizer_at_deletion
            ));
        }
    }
    let slowest = done
        .iter()
        .map(|cycle| cycle.took)
        .max()
        .unwrap_or_default();
    let with_finalizer = done.iter().filter(|c| c.finalizer_at_deletion).count();
    let fragment = Fragment {
        scenario: "deletion_churn".into(),
        profile,
        faults_injected: vec![format!(
            "{cycles} create/delete cycles in {lanes} parallel lanes, each deleted after a \
             random 0-{linger:?}"
        )],
        objects: done.len(),
        updates_lost,
        max_calls_per_object_per_minute: Some(max_calls_per_connection_per_minute(&calls)),
        bound: format!(
            "every object gone within {bound:?} of its deletion, none left with a finalizer; one \
             DELETE call exactly for each Delete-policy object that carried the finalizer when \
             deleted, none otherwise"
        ),
        recovery_seconds: Some(seconds(slowest)),
        stytch_calls: StytchCalls::of(&calls),
        passed: problems.is_empty(),
        notes: format!(
            "Object names are reused across cycles, connections are not. {with_finalizer} of \
             {} objects carried the finalizer when deleted. Recovery is the slowest deletion. \
             {}",
            done.len(),
            problems.join("; ")
        ),
    };
    fragment.write();
    assert!(problems.is_empty(), "{problems:#?}");
}
