//! End-to-end: `OidcConnection`s applied with kubectl to a real API server, reconciled by the
//! operator (its own process) against the fake Stytch (its own process).

mod support;

use std::time::Duration;

use support::*;

const CLIENT_SECRET: &str = "SENTINEL-CLIENT-SECRET-7f3a9c1e-first";
const ROTATED_CLIENT_SECRET: &str = "SENTINEL-CLIENT-SECRET-7f3a9c1e-rotated";
const READY_WITHIN: Duration = Duration::from_secs(10);

struct Setup {
    namespace: TestNamespace,
    fake: FakeStytch,
    operator: Operator,
}

/// A namespace with credentials and the client secret, a fake Stytch with `connection_ids`,
/// and an operator for both.
async fn setup(test: &str, connection_ids: &[&str], with_client_secret: bool) -> Setup {
    install_crd();
    let namespace = TestNamespace::create(test).await;
    if with_client_secret {
        namespace
            .put_secret("acme-oidc", &[("client_secret", CLIENT_SECRET)])
            .await;
    }
    let fake = FakeStytch::start(&namespace.name, connection_ids).await;
    let operator = namespace.start_operator(&fake, "10m");
    Setup {
        namespace,
        fake,
        operator,
    }
}

fn full_spec(issuer: &str, display_name: &str) -> String {
    format!(
        "  identityProvider: okta\n  displayName: {display_name}\n  issuer: {issuer}\n  \
         clientId: 0oa1b2c3\n  customScopes: [groups]\n  attributeMapping: {{email: mail}}\n"
    )
}

fn assert_no_secret_in(text: &str, context: &str) {
    for sentinel in [CLIENT_SECRET, ROTATED_CLIENT_SECRET, PROJECT_SECRET] {
        assert!(
            !text.contains(sentinel),
            "a secret value appears in {context}"
        );
    }
}

#[tokio::test]
async fn applied_connection_becomes_ready_with_the_request_id_of_its_only_update() {
    let Setup {
        namespace,
        fake,
        operator,
    } = setup("ready", &["oidc-connection-test-a"], true).await;
    let spec = full_spec(&fake.issuer("acme"), "Acme Okta");
    let output = namespace.apply(&manifest("acme", "oidc-connection-test-a", &spec));
    assert!(output.success, "{}", output.stderr);

    let object = namespace
        .wait_for_condition("acme", "Ready", "True", READY_WITHIN)
        .await;

    let status = object.status.unwrap();
    assert_eq!(status.connection_status.as_deref(), Some("active"));
    assert!(status.active);
    let puts = fake.calls_with_method("PUT").await;
    assert_eq!(puts.len(), 1, "{puts:#?}");
    assert_eq!(status.request_id.as_deref(), puts[0]["request_id"].as_str());
    assert_eq!(puts[0]["body"]["client_secret"], redacted(CLIENT_SECRET));
    assert!(
        status
            .redirect_url
            .unwrap()
            .contains("oidc-connection-test-a")
    );
    assert_eq!(status.observed_generation, object.metadata.generation);
    let connection = fake.connection("oidc-connection-test-a").await;
    assert_eq!(connection["display_name"], "Acme Okta");
    assert_eq!(connection["custom_scopes"], "groups");
    assert_no_secret_in(&operator.log(), "the operator's log");
    assert_no_secret_in(
        &serde_json::to_string(&fake.calls().await).unwrap(),
        "the call log",
    );
}

#[tokio::test]
async fn issuer_discovery_fills_the_urls_and_resyncs_make_no_further_update() {
    let Setup {
        namespace,
        fake,
        operator: _operator,
    } = setup("discovery", &["oidc-connection-test-b"], true).await;
    let spec = format!(
        "  issuer: {}\n  clientId: 0oa1b2c3\n  resyncInterval: 1s\n",
        fake.issuer("discovered")
    );
    let output = namespace.apply(&manifest("discovered", "oidc-connection-test-b", &spec));
    assert!(output.success, "{}", output.stderr);

    let object = namespace
        .wait_for_condition("discovered", "Ready", "True", READY_WITHIN)
        .await;

    assert_eq!(
        object.status.unwrap().connection_status.as_deref(),
        Some("active")
    );
    let connection = fake.connection("oidc-connection-test-b").await;
    for url in ["authorization_url", "token_url", "userinfo_url", "jwks_url"] {
        let value = connection[url].as_str().unwrap();
        assert!(
            value.starts_with(&fake.issuer("discovered")),
            "{url} = {value:?}"
        );
    }
    let lists_when_ready = fake.calls_with_method("GET").await.len();
    eventually("three resyncs", Duration::from_secs(10), || async {
        (fake.calls_with_method("GET").await.len() >= lists_when_ready + 3).then_some(())
    })
    .await;
    assert_eq!(fake.calls_with_method("PUT").await.len(), 1);
}

#[tokio::test]
async fn editing_the_display_name_makes_exactly_one_more_update() {
    let Setup {
        namespace,
        fake,
        operator: _operator,
    } = setup("edit", &["oidc-connection-test-c"], true).await;
    let issuer = fake.issuer("acme");
    let output = namespace.apply(&manifest(
        "acme",
        "oidc-connection-test-c",
        &full_spec(&issuer, "Before"),
    ));
    assert!(output.success, "{}", output.stderr);
    namespace
        .wait_for_condition("acme", "Ready", "True", READY_WITHIN)
        .await;

    let output = namespace.apply(&manifest(
        "acme",
        "oidc-connection-test-c",
        &full_spec(&issuer, "After"),
    ));
    assert!(output.success, "{}", output.stderr);
    let object = namespace
        .wait_for_condition("acme", "Ready", "True", READY_WITHIN)
        .await;

    assert_eq!(object.metadata.generation, Some(2));
    assert_eq!(object.status.unwrap().observed_generation, Some(2));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let puts = fake.calls_with_method("PUT").await;
    assert_eq!(puts.len(), 2, "{puts:#?}");
    assert_eq!(
        puts[1]["body"],
        serde_json::json!({"display_name": "After"})
    );
    assert_eq!(
        fake.connection("oidc-connection-test-c").await["display_name"],
        "After"
    );
}

#[tokio::test]
async fn rotating_the_client_secret_sends_the_new_value_once() {
    let Setup {
        namespace,
        fake,
        operator,
    } = setup("rotate", &["oidc-connection-test-d"], true).await;
    let spec = full_spec(&fake.issuer("acme"), "Acme");
    let output = namespace.apply(&manifest("acme", "oidc-connection-test-d", &spec));
    assert!(output.success, "{}", output.stderr);
    let before = namespace
        .wait_for_condition("acme", "Ready", "True", READY_WITHIN)
        .await;

    namespace
        .put_secret("acme-oidc", &[("client_secret", ROTATED_CLIENT_SECRET)])
        .await;

    let puts = eventually("the rotated secret to be sent", READY_WITHIN, || async {
        let puts = fake.calls_with_method("PUT").await;
        (puts.len() >= 2).then_some(puts)
    })
    .await;
    assert_eq!(
        puts[1]["body"],
        serde_json::json!({"client_secret": redacted(ROTATED_CLIENT_SECRET)})
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(fake.calls_with_method("PUT").await.len(), 2);
    let after = namespace.get("acme").await;
    assert_eq!(after.metadata.generation, before.metadata.generation);
    let version = |o: &stytch_sso_operator::crd::OidcConnection| {
        o.status.as_ref().unwrap().client_secret_version.clone()
    };
    assert_ne!(version(&after), version(&before));
    assert_no_secret_in(&operator.log(), "the operator's log");
    assert_no_secret_in(&serde_json::to_string(&after).unwrap(), "the object");
}

#[tokio::test]
async fn a_changed_project_secret_is_read_again_by_the_reconciles_it_triggers() {
    const WRONG_PROJECT_SECRET: &str = "secret-test-SENTINEL-WRONG-PROJECT-SECRET-3c59dc04";
    let Setup {
        namespace,
        fake,
        operator,
    } = setup("project-secret", &["oidc-connection-test-p"], true).await;
    let spec = full_spec(&fake.issuer("acme"), "Acme");
    let output = namespace.apply(&manifest("acme", "oidc-connection-test-p", &spec));
    assert!(output.success, "{}", output.stderr);
    namespace
        .wait_for_condition("acme", "Ready", "True", READY_WITHIN)
        .await;

    // The operator keeps the credentials it read. Once it has seen their Secret change, the
    // next call to Stytch must carry the new value, not the kept one. (The reconcile the change
    // triggers finds the organization's list fresh and calls nothing, so a spec edit makes the
    // call.)
    namespace
        .put_secret(
            CREDENTIALS_SECRET,
            &[("project_id", PROJECT_ID), ("secret", WRONG_PROJECT_SECRET)],
        )
        .await;
    let seen = format!(
        "related object updated: Secret.v1./{CREDENTIALS_SECRET}.{}",
        namespace.name
    );
    eventually(
        "the operator to see the Secret change",
        READY_WITHIN,
        || async { operator.log().contains(&seen).then_some(()) },
    )
    .await;
    let output = namespace.apply(&manifest(
        "acme",
        "oidc-connection-test-p",
        &full_spec(&fake.issuer("acme"), "Acme Renamed"),
    ));
    assert!(output.success, "{}", output.stderr);
    namespace
        .wait_for_condition("acme", "Ready", "False", READY_WITHIN)
        .await;
    assert_eq!(
        namespace.ready_reason("acme").await.as_deref(),
        Some("UnauthorizedCredentials")
    );

    namespace
        .put_secret(
            CREDENTIALS_SECRET,
            &[("project_id", PROJECT_ID), ("secret", PROJECT_SECRET)],
        )
        .await;
    namespace
        .wait_for_condition("acme", "Ready", "True", READY_WITHIN)
        .await;
    assert_eq!(
        fake.connection("oidc-connection-test-p").await["display_name"],
        "Acme Renamed"
    );
    let log = operator.log();
    assert_no_secret_in(&log, "the operator's log");
    assert!(
        !log.contains(WRONG_PROJECT_SECRET),
        "a secret value appears in the operator's log"
    );
}

#[tokio::test]
async fn a_change_made_in_stytch_is_corrected_within_one_resync() {
    let Setup {
        namespace,
        fake,
        operator: _operator,
    } = setup("drift", &["oidc-connection-test-e"], true).await;
    let spec = full_spec(&fake.issuer("acme"), "Acme") + "  resyncInterval: 2s\n";
    let output = namespace.apply(&manifest("acme", "oidc-connection-test-e", &spec));
    assert!(output.success, "{}", output.stderr);
    namespace
        .wait_for_condition("acme", "Ready", "True", READY_WITHIN)
        .await;

    fake.change_behind_the_operators_back(
        "oidc-connection-test-e",
        serde_json::json!({"display_name": "Changed in the dashboard"}),
    )
    .await;

    // One resync is at most 2 s; allow for the reconcile itself.
    eventually(
        "the drift to be corrected",
        Duration::from_secs(4),
        || async {
            (fake.connection("oidc-connection-test-e").await["display_name"] == "Acme")
                .then_some(())
        },
    )
    .await;
    let puts = fake.calls_with_method("PUT").await;
    assert_eq!(puts.len(), 2, "{puts:#?}");
    assert_eq!(puts[1]["body"], serde_json::json!({"display_name": "Acme"}));
}

#[tokio::test]
async fn a_missing_secret_is_reported_without_calling_stytch_and_recovers_when_created() {
    let Setup {
        namespace,
        fake,
        operator: _operator,
    } = setup("nosecret", &["oidc-connection-test-f"], false).await;
    let spec = full_spec(&fake.issuer("acme"), "Acme");
    let output = namespace.apply(&manifest("acme", "oidc-connection-test-f", &spec));
    assert!(output.success, "{}", output.stderr);

    let object = namespace
        .wait_for_condition("acme", "Ready", "False", READY_WITHIN)
        .await;

    let ready = object
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(ready.reason, "SecretNotFound");
    assert!(ready.message.contains("acme-oidc"), "{}", ready.message);
    assert!(
        fake.calls().await.is_empty(),
        "Stytch was called: {:#?}",
        fake.calls().await
    );

    namespace
        .put_secret("acme-oidc", &[("client_secret", CLIENT_SECRET)])
        .await;
    namespace
        .wait_for_condition("acme", "Ready", "True", READY_WITHIN)
        .await;
}

#[tokio::test]
async fn the_api_server_refuses_invalid_manifests_naming_the_field() {
    install_crd();
    let namespace = TestNamespace::create("invalid").await;
    let cases = [
        (
            "spec.issuer",
            manifest("http-issuer", "c", "  issuer: http://acme.okta.com\n"),
        ),
        (
            "spec.issuer",
            manifest("no-host", "c", "  issuer: https:///path\n"),
        ),
        (
            "spec.issuer",
            manifest("upper-scheme", "c", "  issuer: HTTPS://acme.okta.com\n"),
        ),
        (
            "spec.jwksUrl",
            manifest("http-jwks", "c", "  jwksUrl: http://acme.okta.com/keys\n"),
        ),
        (
            "spec.identityProvider",
            manifest("bad-idp", "c", "  identityProvider: okta2\n"),
        ),
        (
            "spec.connectionId",
            format!(
                "apiVersion: sso.stytch-operator.dev/v1alpha1\nkind: OidcConnection\n\
                 metadata:\n  name: no-connection\nspec:\n  organizationId: {ORGANIZATION_ID}\n"
            ),
        ),
    ];
    for (field, manifest) in cases {
        let output = namespace.apply(&manifest);
        assert!(!output.success, "accepted a manifest with a bad {field}");
        assert!(
            output.stderr.contains(field),
            "the error does not name {field}: {}",
            output.stderr
        );
    }
    assert!(
        namespace
            .objects()
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
}
