//! End-to-end: running the operator as a service. Metrics and probes, leader election with
//! fail-over, and a clean exit on SIGTERM.

mod support;

use std::time::{Duration, Instant};

use support::*;

const CLIENT_SECRET: &str = "SENTINEL-CLIENT-SECRET-0c55a2e1";
const SOON: Duration = Duration::from_secs(10);

async fn namespace_with_secret(test: &str) -> TestNamespace {
    TestNamespace::with_client_secret(test, CLIENT_SECRET).await
}

fn active_spec() -> &'static str {
    "  displayName: Acme\n  clientId: client-1\n  issuer: https://idp.example.test/acme\n  \
     authorizationUrl: https://idp.example.test/acme/authorize\n  \
     tokenUrl: https://idp.example.test/acme/token\n  \
     userinfoUrl: https://idp.example.test/acme/userinfo\n  \
     jwksUrl: https://idp.example.test/acme/keys\n"
}

async fn get(url: &str) -> (u16, String) {
    let response = reqwest::get(url).await.expect("the endpoint answers");
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test]
async fn metrics_count_reconciles_and_calls_without_per_object_labels() {
    let namespace = namespace_with_secret("metrics").await;
    let fake = FakeStytch::start(&namespace.name, &["conn"]).await;
    let operator = namespace.start_operator(&fake, "10m");
    let url = operator.endpoints_url().await;
    let output = namespace.apply(&manifest("acme", "conn", active_spec()));
    assert!(output.success, "{}", output.stderr);
    namespace
        .wait_for_condition("acme", "Ready", "True", SOON)
        .await;

    let (status, _) = get(&format!("{url}/healthz")).await;
    assert_eq!(status, 200);
    let (status, _) = get(&format!("{url}/readyz")).await;
    assert_eq!(status, 200);
    let (status, text) = get(&format!("{url}/metrics")).await;
    assert_eq!(status, 200);
    for expected in [
        "stytch_sso_reconciles_total{result=\"updated\"} 1",
        "stytch_sso_stytch_requests_total{operation=\"list\",status_code=\"200\"}",
        "stytch_sso_stytch_requests_total{operation=\"update\",status_code=\"200\"} 1",
        "stytch_sso_connections{ready=\"true\"} 1",
        "stytch_sso_reconcile_duration_seconds_bucket",
    ] {
        assert!(text.contains(expected), "missing {expected} in:\n{text}");
    }
    assert!(!text.contains(&namespace.name), "no per-object label");
    assert!(!text.contains(CLIENT_SECRET) && !text.contains(PROJECT_SECRET));
}

#[tokio::test]
async fn only_the_leader_writes_and_a_follower_takes_over_after_a_kill() {
    let namespace = namespace_with_secret("leader").await;
    let fake = FakeStytch::start(&namespace.name, &["conn"]).await;
    let lease = [
        "--leader-elect",
        "--leader-election-namespace",
        &namespace.name,
    ];
    let args = [&lease[..], &["--leader-election-lease-duration", "6s"]].concat();
    let mut first = namespace.start_operator_named(&fake, "first", &args);
    eventually("the first replica to lead", SOON, || async {
        first.log().contains("became the leader").then_some(())
    })
    .await;
    let second = namespace.start_operator_named(&fake, "second", &args);
    let output = namespace.apply(&manifest("acme", "conn", active_spec()));
    assert!(output.success, "{}", output.stderr);
    namespace
        .wait_for_condition("acme", "Ready", "True", SOON)
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(first.log().contains("reconciled"));
    assert!(
        !second.log().contains("reconciled"),
        "the follower must not reconcile"
    );
    assert!(!second.log().contains("became the leader"));

    first.kill();
    let killed_at = Instant::now();
    eventually(
        "the second replica to lead",
        Duration::from_secs(20),
        || async { second.log().contains("became the leader").then_some(()) },
    )
    .await;
    let failover = killed_at.elapsed();
    println!(
        "fail-over after kill -9: {:.1} s (lease duration 6 s)",
        failover.as_secs_f64()
    );
    assert!(failover <= Duration::from_secs(8), "took {failover:?}");

    // The new leader works: an edit reaches Stytch.
    let edited = active_spec().replace("displayName: Acme", "displayName: After fail-over");
    let output = namespace.apply(&manifest("acme", "conn", &edited));
    assert!(output.success, "{}", output.stderr);
    eventually("the edit to reach Stytch", SOON, || async {
        (fake.connection("conn").await["display_name"] == "After fail-over").then_some(())
    })
    .await;
}

#[tokio::test]
async fn sigterm_stops_the_operator_cleanly() {
    let namespace = namespace_with_secret("sigterm").await;
    let fake = FakeStytch::start(&namespace.name, &["conn"]).await;
    let mut operator = namespace.start_operator(&fake, "10m");
    let output = namespace.apply(&manifest("acme", "conn", active_spec()));
    assert!(output.success, "{}", output.stderr);
    namespace
        .wait_for_condition("acme", "Ready", "True", SOON)
        .await;

    let exited = operator.terminate(Duration::from_secs(10));

    assert_eq!(
        exited,
        Some(true),
        "exit status after SIGTERM; log:\n{}",
        operator.log()
    );
}

#[tokio::test]
async fn a_label_selector_limits_the_operator_to_matching_objects() {
    let namespace = namespace_with_secret("selector").await;
    let fake = FakeStytch::start(&namespace.name, &["ours", "theirs"]).await;
    let args = [
        "--label-selector",
        "team=identity",
        "--resync-interval",
        "10m",
    ];
    let _operator = namespace.start_operator_with(&fake, &args);
    let ours = manifest("ours", "ours", active_spec()).replace(
        "metadata:\n  name: ours\n",
        "metadata:\n  name: ours\n  labels: {team: identity}\n",
    );
    for manifest in [ours, manifest("theirs", "theirs", active_spec())] {
        let output = namespace.apply(&manifest);
        assert!(output.success, "{}", output.stderr);
    }

    namespace
        .wait_for_condition("ours", "Ready", "True", SOON)
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    let theirs = namespace.get("theirs").await;
    assert!(
        theirs.status.is_none(),
        "an object outside the selector was reconciled"
    );
    let puts = fake.calls_with_method("PUT").await;
    assert_eq!(puts.len(), 1, "{puts:#?}");
    assert!(puts[0]["path"].as_str().unwrap().ends_with("/ours"));
}
