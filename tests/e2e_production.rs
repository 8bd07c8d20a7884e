//! End-to-end behaviour a platform team relies on when the operator runs for a year: triggers,
//! backoff, rate limits, policies, annotations, conflicts, deletion, Events and secrecy. Each
//! test asserts counts of calls in the fake Stytch's call log, not only final states.

mod support;

use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::json;
use support::*;

const CLIENT_SECRET: &str = "SENTINEL-CLIENT-SECRET-b71e44d0";
const OTHER_CLIENT_SECRET: &str = "SENTINEL-CLIENT-SECRET-b71e44d0-other";
const SECOND_ORGANIZATION_ID: &str = "organization-test-00000000-0000-4000-8000-0000000000bb";
const SOON: Duration = Duration::from_secs(10);

async fn namespace_with_secret(test: &str) -> TestNamespace {
    TestNamespace::with_client_secret(test, CLIENT_SECRET).await
}

/// A namespace, a fake Stytch with connection `conn`, an operator resyncing every `resync`,
/// and the object `acme` for `conn`, Ready.
async fn ready_connection(test: &str, resync: &str) -> (TestNamespace, FakeStytch, Operator) {
    let namespace = namespace_with_secret(test).await;
    let fake = FakeStytch::start(&namespace.name, &["conn"]).await;
    let operator = namespace.start_operator(&fake, resync);
    apply(&namespace, &manifest("acme", "conn", &spec("Acme")));
    namespace
        .wait_for_condition("acme", "Ready", "True", SOON)
        .await;
    (namespace, fake, operator)
}

fn apply(namespace: &TestNamespace, manifest: &str) {
    let output = namespace.apply(manifest);
    assert!(output.success, "kubectl apply failed: {}", output.stderr);
}

fn annotate(namespace: &TestNamespace, name: &str, annotation: &str) {
    let target = format!("oidcconnection/{name}");
    let output = kubectl(
        &[
            "annotate",
            "--overwrite",
            "-n",
            &namespace.name,
            &target,
            annotation,
        ],
        None,
    );
    assert!(output.success, "kubectl annotate failed: {}", output.stderr);
}

/// Spec lines that make the connection active: every URL is explicit, so no discovery.
fn spec(display_name: &str) -> String {
    let idp = "https://idp.example.test/acme";
    format!(
        "  displayName: {display_name}\n  clientId: client-1\n  identityProvider: okta\n  \
         issuer: {idp}\n  authorizationUrl: {idp}/authorize\n  tokenUrl: {idp}/token\n  \
         userinfoUrl: {idp}/userinfo\n  jwksUrl: {idp}/keys\n"
    )
}

fn reason_of(object: &stytch_sso_operator::crd::OidcConnection, type_: &str) -> (String, String) {
    let status = object.status.as_ref().expect("a status");
    let condition = status
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .expect("the condition");
    (condition.reason.clone(), condition.message.clone())
}

#[tokio::test]
async fn a_secret_change_reconciles_exactly_the_objects_that_reference_it() {
    let namespace = namespace_with_secret("triggers").await;
    namespace
        .put_secret("other-oidc", &[("client_secret", OTHER_CLIENT_SECRET)])
        .await;
    let organizations: [(&str, &[&str]); 2] = [
        (ORGANIZATION_ID, &["conn-a"]),
        (SECOND_ORGANIZATION_ID, &["conn-b"]),
    ];
    let fake = FakeStytch::start_with_organizations(&namespace.name, &organizations).await;
    let operator = namespace.start_operator(&fake, "10m");
    apply(&namespace, &manifest("a", "conn-a", &spec("A")));
    let b = manifest("b", "conn-b", &spec("B"))
        .replace(ORGANIZATION_ID, SECOND_ORGANIZATION_ID)
        .replace("name: acme-oidc", "name: other-oidc");
    apply(&namespace, &b);
    namespace
        .wait_for_condition("a", "Ready", "True", SOON)
        .await;
    namespace
        .wait_for_condition("b", "Ready", "True", SOON)
        .await;
    fake.settle().await;

    namespace
        .put_secret("acme-oidc", &[("client_secret", "SENTINEL-rotated-a")])
        .await;
    namespace
        .put_secret("unrelated", &[("anything", "value")])
        .await;

    eventually("the rotated secret to reach Stytch", SOON, || async {
        (fake.calls_with_method("PUT").await.len() == 3).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Each finished reconcile is logged in a span that says what triggered it.
    let log = operator.log();
    let triggered_by_secrets: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("related object updated: Secret"))
        .filter(|line| line.contains(" reconciled "))
        .collect();
    let object = |name: &str| format!("dev/{name}.{}", namespace.name);
    let for_a = triggered_by_secrets
        .iter()
        .filter(|l| l.contains(&object("a")));
    assert_eq!(
        for_a.count(),
        1,
        "object a: one reconcile\n{triggered_by_secrets:#?}"
    );
    let for_b = triggered_by_secrets
        .iter()
        .filter(|l| l.contains(&object("b")));
    assert_eq!(
        for_b.count(),
        0,
        "object b: none\n{triggered_by_secrets:#?}"
    );
    assert_eq!(fake.calls_with_method("PUT").await.len(), 3);
}

#[tokio::test]
async fn server_errors_are_retried_with_backoff_until_stytch_recovers() {
    let namespace = namespace_with_secret("backoff").await;
    let fake = FakeStytch::start(&namespace.name, &["conn"]).await;
    let fault_for = Duration::from_secs(8);
    let until_ms = (jiff::Timestamp::now() + fault_for).as_millisecond();
    fake.set_faults(
        json!([{"operation": "update", "action": {"status": 503}, "until_ms": until_ms}]),
    )
    .await;
    let _operator =
        namespace.start_operator_with(&fake, &["--backoff-cap", "4s", "--resync-interval", "10m"]);
    let started = Instant::now();
    apply(&namespace, &manifest("acme", "conn", &spec("Acme")));

    let failing = namespace
        .wait_for_condition("acme", "Ready", "False", SOON)
        .await;
    assert_eq!(reason_of(&failing, "Ready").0, "ServerUnavailable");
    namespace
        .wait_for_condition("acme", "Ready", "True", Duration::from_secs(20))
        .await;

    // Full jitter with a 1 s base and a 4 s cap averages about one attempt per 1.5 s once the
    // ceiling is reached; a hot loop would make hundreds in 8 s.
    let failed: Vec<_> = fake
        .calls()
        .await
        .into_iter()
        .filter(|c| c["status"] == 503)
        .collect();
    println!(
        "failed attempts during 8 s of 503 (backoff 1 s doubling to 4 s): {}",
        failed.len()
    );
    assert!(
        !failed.is_empty() && failed.len() <= 15,
        "{} failed attempts",
        failed.len()
    );
    assert!(started.elapsed() >= fault_for);
    assert!(
        namespace
            .events()
            .await
            .iter()
            .any(|(t, r, _)| t == "Warning" && r == "UpdateFailed")
    );
}

#[tokio::test]
async fn rate_limits_are_retried_no_sooner_than_retry_after() {
    let namespace = namespace_with_secret("retryafter").await;
    let fake = FakeStytch::start(&namespace.name, &["conn"]).await;
    let rule = json!({"operation": "update", "action": {"status": 429, "retry_after_secs": 2}, "times": 2});
    fake.set_faults(json!([rule])).await;
    let _operator = namespace.start_operator(&fake, "10m");
    apply(&namespace, &manifest("acme", "conn", &spec("Acme")));

    namespace
        .wait_for_condition("acme", "Ready", "True", SOON)
        .await;

    let puts = fake.calls_with_method("PUT").await;
    assert_eq!(puts.len(), 3, "two refused, one accepted: {puts:#?}");
    let times: Vec<jiff::Timestamp> = puts
        .iter()
        .map(|c| c["time"].as_str().unwrap().parse().unwrap())
        .collect();
    for pair in times.windows(2) {
        let gap = pair[1].duration_since(pair[0]);
        assert!(
            gap >= jiff::SignedDuration::from_millis(1900),
            "retried after {gap:?}"
        );
    }
    namespace.wait_for_event("RateLimited", SOON).await;
}

#[tokio::test]
async fn a_spec_stytch_rejects_is_retried_only_at_resync_or_on_change() {
    let namespace = namespace_with_secret("rejected").await;
    let fake = FakeStytch::start(&namespace.name, &["conn"]).await;
    let rejection = json!({"status": 400, "error_type": "invalid_sso_idp",
        "error_message": "identity_provider is not valid for this issuer"});
    fake.set_faults(json!([{"operation": "update", "action": rejection}]))
        .await;
    let _operator = namespace.start_operator(&fake, "10m");
    apply(
        &namespace,
        &(manifest("acme", "conn", &spec("Acme")) + "  resyncInterval: 2s\n"),
    );

    let failed = namespace
        .wait_for_condition("acme", "Ready", "False", SOON)
        .await;
    let (reason, message) = reason_of(&failed, "Ready");
    assert_eq!(reason, "InvalidSsoIdp");
    assert!(message.contains("Fix the spec"), "{message}");
    let first_put = Instant::now();
    tokio::time::sleep(Duration::from_secs(10)).await;

    // 10 s at a 2 s resync (shortened by up to 10 %) allows at most ceil(10 / 1.8) + 1 = 7
    // attempts; with the operator's default 10 m resync, 30 minutes allow at most 4.
    let attempts = fake.calls_with_method("PUT").await.len();
    println!("update attempts while Stytch refused the spec for 10 s at a 2 s resync: {attempts}");
    assert!(
        (2..=7).contains(&attempts),
        "{attempts} attempts in {:?}",
        first_put.elapsed()
    );
    namespace.wait_for_event("UpdateFailed", SOON).await;

    // A change of the spec is tried at once.
    fake.clear_faults().await;
    apply(
        &namespace,
        &(manifest("acme", "conn", &spec("Acme 2")) + "  resyncInterval: 2s\n"),
    );
    namespace
        .wait_for_condition("acme", "Ready", "True", Duration::from_secs(3))
        .await;
}

#[tokio::test]
async fn a_paused_object_makes_no_calls_and_says_so() {
    let (namespace, fake, _operator) = ready_connection("paused", "1s").await;

    annotate(&namespace, "acme", "sso.stytch-operator.dev/paused=true");
    let paused = eventually("Synced=Paused", SOON, || async {
        let object = namespace.get("acme").await;
        (reason_of(&object, "Synced").0 == "Paused").then_some(object)
    })
    .await;
    assert_eq!(
        reason_of(&paused, "Ready").0,
        "Active",
        "pausing does not change usability"
    );
    namespace.wait_for_event("Paused", SOON).await;
    let calls_when_paused = fake.calls().await.len();
    apply(
        &namespace,
        &manifest("acme", "conn", &spec("Edited while paused")),
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        fake.calls().await.len(),
        calls_when_paused,
        "no call while paused"
    );
    // The edit was not acted on, and the status does not pretend it was.
    let object = namespace.get("acme").await;
    let status = object.status.as_ref().unwrap();
    assert_eq!(status.observed_generation, Some(1));
    assert_ne!(object.metadata.generation, status.observed_generation);

    annotate(&namespace, "acme", "sso.stytch-operator.dev/paused-");
    eventually("the edit to reach Stytch", SOON, || async {
        (fake.connection("conn").await["display_name"] == "Edited while paused").then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_client_secret_stytch_lost_is_sent_again_at_the_next_resync() {
    let (namespace, fake, _operator) = ready_connection("lost-secret", "1s").await;

    fake.change_behind_the_operators_back("conn", json!({"client_secret": ""}))
        .await;

    eventually("the secret to be sent again", SOON, || async {
        let connection = fake.connection("conn").await;
        (connection["status"] == "active").then_some(())
    })
    .await;
    let puts = fake.calls_with_method("PUT").await;
    assert_eq!(
        puts.last().unwrap()["body"]["client_secret"],
        redacted(CLIENT_SECRET)
    );
    namespace
        .wait_for_condition("acme", "Ready", "True", SOON)
        .await;
}

#[tokio::test]
async fn a_reconcile_request_forces_a_reconcile_and_is_echoed() {
    let (namespace, fake, _operator) = ready_connection("requested", "10m").await;
    fake.settle().await;
    let lists = fake.lists_of(ORGANIZATION_ID).await;

    annotate(
        &namespace,
        "acme",
        "sso.stytch-operator.dev/reconcile-requested-at=2026-12-03T12:00:00Z",
    );

    eventually("lastHandledReconcileAt", SOON, || async {
        let object = namespace.get("acme").await;
        let handled = object.status?.last_handled_reconcile_at?;
        (handled == "2026-12-03T12:00:00Z").then_some(())
    })
    .await;
    assert_eq!(fake.lists_of(ORGANIZATION_ID).await, lists + 1);
}

#[tokio::test]
async fn observe_only_reports_differences_by_name_and_never_writes() {
    let namespace = namespace_with_secret("observe").await;
    let fake = FakeStytch::start(&namespace.name, &["conn"]).await;
    let _operator = namespace.start_operator(&fake, "10m");
    apply(
        &namespace,
        &(manifest("acme", "conn", &spec("Acme")) + "  managementPolicy: ObserveOnly\n"),
    );

    let object = namespace
        .wait_for_condition("acme", "Synced", "False", SOON)
        .await;

    let status = object.status.clone().unwrap();
    let expected = [
        "displayName",
        "clientId",
        "issuer",
        "authorizationUrl",
        "tokenUrl",
        "userinfoUrl",
        "jwksUrl",
        "identityProvider",
    ];
    assert_eq!(status.pending_changes, expected);
    assert_eq!(reason_of(&object, "Synced").0, "PendingChanges");
    assert!(fake.calls_with_method("PUT").await.is_empty());
    let status_text = serde_json::to_string(&status).unwrap();
    assert!(
        !status_text.contains("client-1"),
        "values are not reported, only names"
    );
}

#[tokio::test]
async fn delete_policy_deletes_the_connection_and_orphan_leaves_it() {
    let namespace = namespace_with_secret("deletion").await;
    let fake = FakeStytch::start(&namespace.name, &["kept", "deleted"]).await;
    let _operator = namespace.start_operator(&fake, "10m");
    apply(&namespace, &manifest("orphan", "kept", &spec("Kept")));
    apply(
        &namespace,
        &(manifest("delete", "deleted", &spec("Deleted")) + "  deletionPolicy: Delete\n"),
    );
    namespace
        .wait_for_condition("orphan", "Ready", "True", SOON)
        .await;
    let object = namespace
        .wait_for_condition("delete", "Ready", "True", SOON)
        .await;
    assert_eq!(
        object.metadata.finalizers,
        Some(vec!["sso.stytch-operator.dev/cleanup".into()])
    );

    let output = kubectl(
        &[
            "delete",
            "-n",
            &namespace.name,
            "oidcconnections",
            "--all",
            "--timeout=20s",
        ],
        None,
    );
    assert!(output.success, "{}", output.stderr);

    assert!(fake.find_connection("kept").await.is_some());
    assert!(fake.find_connection("deleted").await.is_none());
    assert_eq!(fake.calls_with_method("DELETE").await.len(), 1);
    namespace.wait_for_event("Deleted", SOON).await;
}

#[tokio::test]
async fn a_deletion_without_credentials_says_why_it_is_stuck_and_orphan_releases_it() {
    let namespace = namespace_with_secret("stuck").await;
    let fake = FakeStytch::start(&namespace.name, &["conn"]).await;
    let _operator = namespace.start_operator(&fake, "10m");
    apply(
        &namespace,
        &(manifest("acme", "conn", &spec("Acme")) + "  deletionPolicy: Delete\n"),
    );
    namespace
        .wait_for_condition("acme", "Ready", "True", SOON)
        .await;
    let output = kubectl(
        &[
            "delete",
            "secret",
            "-n",
            &namespace.name,
            CREDENTIALS_SECRET,
        ],
        None,
    );
    assert!(output.success, "{}", output.stderr);

    let output = kubectl(
        &[
            "delete",
            "-n",
            &namespace.name,
            "oidcconnection/acme",
            "--wait=false",
        ],
        None,
    );
    assert!(output.success, "{}", output.stderr);
    // Deleting the credentials already made the object report them missing; being deleted
    // adds how to let it go.
    eventually("the object to say why it is stuck", SOON, || async {
        let object = namespace.get("acme").await;
        let (reason, message) = reason_of(&object, "Ready");
        let stuck = reason == "CredentialsNotFound" && message.contains("deletionPolicy to Orphan");
        stuck.then_some(())
    })
    .await;

    let patch = r#"{"spec":{"deletionPolicy":"Orphan"}}"#;
    let output = kubectl(
        &[
            "patch",
            "-n",
            &namespace.name,
            "oidcconnection/acme",
            "--type=merge",
            "-p",
            patch,
        ],
        None,
    );
    assert!(output.success, "{}", output.stderr);
    eventually("the object to be gone", SOON, || async {
        namespace
            .objects()
            .get_opt("acme")
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
    assert!(
        fake.find_connection("conn").await.is_some(),
        "Orphan leaves the connection"
    );
}

#[tokio::test]
async fn of_two_objects_for_one_connection_the_newer_conflicts_and_makes_no_calls() {
    let namespace = namespace_with_secret("conflict").await;
    let fake = FakeStytch::start(&namespace.name, &["conn"]).await;
    let _operator = namespace.start_operator(&fake, "1s");
    apply(&namespace, &manifest("first", "conn", &spec("First")));
    namespace
        .wait_for_condition("first", "Ready", "True", SOON)
        .await;

    apply(&namespace, &manifest("second", "conn", &spec("Second")));

    let second = namespace
        .wait_for_condition("second", "Ready", "False", SOON)
        .await;
    let (reason, message) = reason_of(&second, "Ready");
    assert_eq!(reason, "Conflict");
    assert!(message.contains("first"), "{message}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        fake.calls_with_method("PUT").await.len(),
        1,
        "only the first object writes"
    );
    assert_eq!(fake.connection("conn").await["display_name"], "First");
    namespace.wait_for_event("Conflict", SOON).await;
}

#[tokio::test]
async fn rapid_create_and_delete_of_200_objects_leaves_none_stuck() {
    let namespace = namespace_with_secret("churn").await;
    let ids: Vec<String> = (0..200).map(|i| format!("conn-{i}")).collect();
    let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let fake = FakeStytch::start(&namespace.name, &id_refs).await;
    let _operator = namespace.start_operator_with(
        &fake,
        &[
            "--stytch-rate-limit",
            "1000",
            "--stytch-burst",
            "1000",
            "--resync-interval",
            "10m",
        ],
    );
    let manifests: Vec<String> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let policy = if i % 2 == 0 { "Delete" } else { "Orphan" };
            manifest(
                &format!("o-{i}"),
                id,
                &format!("{}  deletionPolicy: {policy}\n", spec("x")),
            )
        })
        .collect();

    apply(&namespace, &manifests.join("---\n"));
    let output = kubectl(
        &[
            "delete",
            "-n",
            &namespace.name,
            "oidcconnections",
            "--all",
            "--wait=false",
        ],
        None,
    );
    assert!(output.success, "{}", output.stderr);

    eventually(
        "every object to be gone",
        Duration::from_secs(60),
        || async {
            let left = namespace
                .objects()
                .list(&Default::default())
                .await
                .unwrap()
                .items
                .len();
            (left == 0).then_some(())
        },
    )
    .await;
    // An object deleted before its finalizer was added never touched Stytch; one deleted
    // after was deleted there. Either way nothing with deletionPolicy Orphan is gone.
    for (i, id) in ids.iter().enumerate().filter(|(i, _)| i % 2 == 1) {
        assert!(fake.find_connection(id).await.is_some(), "o-{i} was Orphan");
    }
}

#[tokio::test]
async fn secrets_never_appear_in_logs_events_status_or_the_call_log() {
    let namespace = namespace_with_secret("secrecy").await;
    let fake = FakeStytch::start(&namespace.name, &["conn"]).await;
    let operator = namespace.start_operator_logging(&fake, "trace");
    // Success path.
    apply(
        &namespace,
        &(manifest("acme", "conn", &spec("Acme")) + "  resyncInterval: 1s\n"),
    );
    namespace
        .wait_for_condition("acme", "Ready", "True", SOON)
        .await;
    // Drift path.
    fake.change_behind_the_operators_back("conn", json!({"display_name": "Drifted"}))
        .await;
    namespace.wait_for_event("DriftCorrected", SOON).await;
    // Failure paths: Stytch refuses the rotated secret; then the Secret loses its key.
    let rejection = json!({"status": 400, "error_type": "client_secret_too_long"});
    fake.set_faults(json!([{"operation": "update", "action": rejection}]))
        .await;
    namespace
        .put_secret("acme-oidc", &[("client_secret", OTHER_CLIENT_SECRET)])
        .await;
    namespace.wait_for_event("UpdateFailed", SOON).await;
    // Applied stringData merges into data, so the old key must go with the old Secret.
    let output = kubectl(
        &["delete", "secret", "-n", &namespace.name, "acme-oidc"],
        None,
    );
    assert!(output.success, "{}", output.stderr);
    namespace
        .put_secret("acme-oidc", &[("wrong_key", OTHER_CLIENT_SECRET)])
        .await;

    namespace.wait_for_event("SecretKeyNotFound", SOON).await;

    let object = namespace.get("acme").await;
    let places = [
        ("the operator's trace log", operator.log()),
        ("Events", format!("{:?}", namespace.events().await)),
        (
            "the object's status and annotations",
            serde_json::to_string(&object).unwrap(),
        ),
        (
            "the fake's call log",
            serde_json::to_string(&fake.calls().await).unwrap(),
        ),
    ];
    assert!(
        operator.log().contains("TRACE"),
        "the log is at trace level"
    );
    let base64 = base64::engine::general_purpose::STANDARD;
    for sentinel in [CLIENT_SECRET, OTHER_CLIENT_SECRET, PROJECT_SECRET] {
        for (place, text) in &places {
            assert!(!text.contains(sentinel), "a secret appears in {place}");
            let encoded = base64.encode(sentinel);
            assert!(
                !text.contains(&encoded),
                "a base64 secret appears in {place}"
            );
        }
    }
}

#[tokio::test]
async fn outbound_calls_never_exceed_the_rate_limit() {
    let namespace = namespace_with_secret("ratelimit").await;
    let ids: Vec<String> = (0..30).map(|i| format!("conn-{i}")).collect();
    let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let fake = FakeStytch::start(&namespace.name, &id_refs).await;
    let args = [
        "--stytch-rate-limit",
        "5",
        "--stytch-burst",
        "5",
        "--resync-interval",
        "10m",
    ];
    let _operator = namespace.start_operator_with(&fake, &args);
    let manifests: Vec<String> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| manifest(&format!("o-{i}"), id, &spec("x")))
        .collect();

    apply(&namespace, &manifests.join("---\n"));
    eventually(
        "every object to be Ready",
        Duration::from_secs(40),
        || async {
            let objects = namespace
                .objects()
                .list(&Default::default())
                .await
                .unwrap()
                .items;
            let ready = objects.iter().filter(|o| {
                let conditions = o
                    .status
                    .as_ref()
                    .map(|s| s.conditions.as_slice())
                    .unwrap_or_default();
                conditions
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True")
            });
            (ready.count() == ids.len()).then_some(())
        },
    )
    .await;

    // A bucket of 5 refilled at 5 per second admits at most 5 + 5 calls in any one second;
    // arrival times at the fake may bunch one call more into a window.
    let times: Vec<jiff::Timestamp> = fake
        .calls()
        .await
        .iter()
        .map(|c| c["time"].as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(
        times.len(),
        31,
        "one list of the organization, shared, and one update per object"
    );
    let busiest = times
        .iter()
        .map(|start| {
            let end = *start + jiff::SignedDuration::from_secs(1);
            times.iter().filter(|t| *t >= start && *t < &end).count()
        })
        .max()
        .unwrap();
    println!("busiest second: {busiest} calls (limit 5/s, burst 5)");
    assert!(busiest <= 11, "{busiest} calls in one second");
}

#[tokio::test]
async fn one_list_per_resync_serves_every_object_of_an_organization() {
    let namespace = namespace_with_secret("sharedlist").await;
    let ids: Vec<String> = (0..12).map(|i| format!("conn-{i}")).collect();
    let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let fake = FakeStytch::start(&namespace.name, &id_refs).await;
    let resync = Duration::from_secs(3);
    let _operator = namespace.start_operator(&fake, "3s");
    let manifests: Vec<String> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| manifest(&format!("o-{i}"), id, &spec("x")))
        .collect();
    apply(&namespace, &manifests.join("---\n"));
    for i in 0..ids.len() {
        let name = format!("o-{i}");
        namespace
            .wait_for_condition(&name, "Ready", "True", SOON)
            .await;
    }
    fake.settle().await;
    assert_eq!(fake.calls_with_method("PUT").await.len(), ids.len());
    let lists_at_start = fake.lists_of(ORGANIZATION_ID).await;
    assert!(
        lists_at_start <= 2,
        "{lists_at_start} lists for the first sync of 12 objects of one organization"
    );

    // Over three resync intervals the objects resync together, so each tick lists once.
    let windows = 3;
    tokio::time::sleep(resync * windows).await;
    fake.settle().await;
    let lists = fake.lists_of(ORGANIZATION_ID).await - lists_at_start;
    println!(
        "{lists} lists in {windows} resync intervals for {} objects",
        ids.len()
    );
    assert!(
        (1..=windows as usize + 1).contains(&lists),
        "{lists} lists in {windows} intervals"
    );
    assert_eq!(
        fake.calls_with_method("PUT").await.len(),
        ids.len(),
        "no drift, no update"
    );
}
