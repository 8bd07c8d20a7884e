//! End-to-end: acting with a member's authority (RBAC-enforced calls) and with per-object
//! project credentials.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::*;

const CLIENT_SECRET: &str = "SENTINEL-CLIENT-SECRET-5e8d21aa";
const OTHER_ORGANIZATION_ID: &str = "organization-test-00000000-0000-4000-8000-0000000000cc";
const SECOND_PROJECT_ID: &str = "project-live-00000000-0000-4000-8000-000000000002";
const SECOND_PROJECT_SECRET: &str = "secret-live-SENTINEL-SECOND-PROJECT-9a0c";
const SOON: Duration = Duration::from_secs(10);

/// Two organizations: ours with an admin and a viewer (may list, may not update), and another
/// with an admin of its own; a second project too.
fn seed() -> Value {
    let mut ours = seed_organization(0, ORGANIZATION_ID, &["conn", "conn-2"]);
    ours["members"] = json!([
        {"member_id": "member-admin", "email_address": "admin@acme.test", "roles": ["stytch_admin"]},
        {"member_id": "member-viewer", "email_address": "viewer@acme.test", "roles": ["sso_viewer"]},
    ]);
    let mut theirs = seed_organization(1, OTHER_ORGANIZATION_ID, &["their-conn"]);
    theirs["members"] = json!([{"member_id": "member-other", "email_address": "a@other.test", "roles": ["stytch_admin"]}]);
    json!({
        "projects": [
            {"project_id": PROJECT_ID, "secret": PROJECT_SECRET},
            {"project_id": SECOND_PROJECT_ID, "secret": SECOND_PROJECT_SECRET},
        ],
        "roles": [{"role_id": "sso_viewer", "permissions": [{"resource_id": "stytch.sso", "actions": ["get"]}]}],
        "organizations": [ours, theirs],
    })
}

struct Setup {
    namespace: TestNamespace,
    fake: FakeStytch,
    _operator: Operator,
}

async fn setup(test: &str) -> Setup {
    let namespace = TestNamespace::with_client_secret(test, CLIENT_SECRET).await;
    let fake = FakeStytch::start_with_seed(&namespace.name, seed()).await;
    let operator = namespace.start_operator(&fake, "10m");
    Setup {
        namespace,
        fake,
        _operator: operator,
    }
}

/// Spec lines for an active connection, without the organization.
fn spec_lines(display_name: &str) -> String {
    let idp = "https://idp.example.test/acme";
    format!(
        "  connectionId: conn\n  clientSecretRef: {{name: acme-oidc, key: client_secret}}\n  \
         displayName: {display_name}\n  clientId: client-1\n  issuer: {idp}\n  \
         authorizationUrl: {idp}/authorize\n  tokenUrl: {idp}/token\n  \
         userinfoUrl: {idp}/userinfo\n  jwksUrl: {idp}/keys\n"
    )
}

fn object(name: &str, extra: &str) -> String {
    format!(
        "apiVersion: sso.stytch-operator.dev/v1alpha1\nkind: OidcConnection\nmetadata:\n  \
         name: {name}\nspec:\n{}{extra}",
        spec_lines("Acme")
    )
}

fn apply(namespace: &TestNamespace, manifest: &str) {
    let output = namespace.apply(manifest);
    assert!(output.success, "kubectl apply failed: {}", output.stderr);
}

fn ready_condition(object: &stytch_sso_operator::crd::OidcConnection) -> (String, String) {
    let status = object.status.as_ref().unwrap();
    let ready = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    (ready.reason.clone(), ready.message.clone())
}

#[tokio::test]
async fn every_call_carries_the_member_session_as_token_or_jwt() {
    let Setup {
        namespace,
        fake,
        _operator,
    } = setup("session-headers").await;
    let (token, jwt) = fake.mint_session("member-admin", 3600).await;
    namespace
        .put_secret("admin-session", &[("token", &token), ("jwt", &jwt)])
        .await;
    let org = format!("  organizationId: {ORGANIZATION_ID}\n");
    apply(
        &namespace,
        &object(
            "by-token",
            &(org.clone() + "  memberSessionRef: {name: admin-session, key: token}\n"),
        ),
    );
    namespace
        .wait_for_condition("by-token", "Ready", "True", SOON)
        .await;
    let by_jwt = object(
        "by-jwt",
        &(org + "  memberSessionRef: {name: admin-session, key: jwt, type: jwt}\n"),
    )
    .replace("connectionId: conn\n", "connectionId: conn-2\n");
    apply(&namespace, &by_jwt);
    namespace
        .wait_for_condition("by-jwt", "Ready", "True", SOON)
        .await;

    let calls = fake.calls().await;
    let sso_calls: Vec<&Value> = calls
        .iter()
        .filter(|c| c["path"].as_str().unwrap().starts_with("/v1/b2b/sso/"))
        .collect();
    assert!(sso_calls.len() >= 4, "{sso_calls:#?}");
    for call in sso_calls {
        let kind = call["member_session"]
            .as_str()
            .expect("a member session header");
        let expected = if kind == "token" {
            redacted(&token)
        } else {
            redacted(&jwt)
        };
        assert_eq!(
            call["member_session_fingerprint"],
            expected.as_str(),
            "{call}"
        );
    }
    let kinds: Vec<&str> = calls
        .iter()
        .filter_map(|c| c["member_session"].as_str())
        .collect();
    assert!(
        kinds.contains(&"token") && kinds.contains(&"jwt"),
        "{kinds:?}"
    );
    let everything = format!(
        "{calls:?}{:?}{:?}",
        namespace.events().await,
        namespace.get("by-jwt").await
    );
    assert!(
        !everything.contains(&token) && !everything.contains(&jwt),
        "a session leaked"
    );
}

#[tokio::test]
async fn the_organization_is_learned_from_the_session_once_and_reported() {
    let Setup {
        namespace,
        fake,
        _operator,
    } = setup("session-org").await;
    let (token, _) = fake.mint_session("member-admin", 3600).await;
    namespace
        .put_secret("admin-session", &[("token", &token)])
        .await;
    let extra = "  memberSessionRef: {name: admin-session, key: token}\n  resyncInterval: 1s\n";
    apply(&namespace, &object("acme", extra));

    let ready = namespace
        .wait_for_condition("acme", "Ready", "True", SOON)
        .await;

    assert_eq!(
        ready.status.unwrap().organization_id.as_deref(),
        Some(ORGANIZATION_ID)
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let authentications = fake
        .calls()
        .await
        .iter()
        .filter(|c| c["path"] == "/v1/b2b/sessions/authenticate")
        .count();
    assert_eq!(authentications, 1, "the session's organization is cached");
    assert!(fake.lists_of(ORGANIZATION_ID).await >= 3, "resyncs went on");
}

#[tokio::test]
async fn a_session_of_another_organization_updates_nothing_and_says_so() {
    let Setup {
        namespace,
        fake,
        _operator,
    } = setup("session-mismatch").await;
    let (token, _) = fake.mint_session("member-other", 3600).await;
    namespace
        .put_secret("other-session", &[("token", &token)])
        .await;
    let extra = format!(
        "  organizationId: {ORGANIZATION_ID}\n  memberSessionRef: {{name: other-session, key: token}}\n"
    );
    apply(&namespace, &object("acme", &extra));

    let object = namespace
        .wait_for_condition("acme", "Ready", "False", SOON)
        .await;

    let (reason, message) = ready_condition(&object);
    assert_eq!(reason, "OrganizationMismatch");
    assert!(message.contains(OTHER_ORGANIZATION_ID), "{message}");
    assert!(fake.calls_with_method("PUT").await.is_empty());
    assert_eq!(fake.lists_of(ORGANIZATION_ID).await, 0);
}

#[tokio::test]
async fn a_member_who_may_not_update_is_forbidden_and_not_retried() {
    let Setup {
        namespace,
        fake,
        _operator,
    } = setup("session-forbidden").await;
    let (token, _) = fake.mint_session("member-viewer", 3600).await;
    namespace
        .put_secret("viewer-session", &[("token", &token)])
        .await;
    let extra = format!(
        "  organizationId: {ORGANIZATION_ID}\n  memberSessionRef: {{name: viewer-session, key: token}}\n"
    );
    apply(&namespace, &object("acme", &extra));

    let object = namespace
        .wait_for_condition("acme", "Ready", "False", SOON)
        .await;

    let (reason, message) = ready_condition(&object);
    assert_eq!(reason, "Forbidden");
    assert!(message.contains("update on stytch.sso"), "{message}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        fake.calls_with_method("PUT").await.len(),
        1,
        "a refusal is not retried"
    );
    namespace.wait_for_event("UpdateFailed", SOON).await;
}

#[tokio::test]
async fn an_expired_session_is_invalid_until_a_fresh_one_is_put_in_the_secret() {
    let Setup {
        namespace,
        fake,
        _operator,
    } = setup("session-expired").await;
    let (expired, _) = fake.mint_session("member-admin", 0).await;
    namespace
        .put_secret("admin-session", &[("token", &expired)])
        .await;
    apply(
        &namespace,
        &object(
            "acme",
            "  memberSessionRef: {name: admin-session, key: token}\n",
        ),
    );

    let object = namespace
        .wait_for_condition("acme", "Ready", "False", SOON)
        .await;
    assert_eq!(ready_condition(&object).0, "SessionInvalid");

    let (fresh, _) = fake.mint_session("member-admin", 3600).await;
    namespace
        .put_secret("admin-session", &[("token", &fresh)])
        .await;
    namespace
        .wait_for_condition("acme", "Ready", "True", SOON)
        .await;
}

#[tokio::test]
async fn per_object_credentials_choose_the_project_of_each_call() {
    let Setup {
        namespace,
        fake,
        _operator,
    } = setup("credentials-ref").await;
    namespace
        .put_secret(
            "live-project",
            &[
                ("project_id", SECOND_PROJECT_ID),
                ("secret", SECOND_PROJECT_SECRET),
            ],
        )
        .await;
    let org = format!("  organizationId: {ORGANIZATION_ID}\n");
    apply(&namespace, &object("default-project", &org));
    let second = object(
        "second-project",
        &(org + "  credentialsRef: {name: live-project}\n"),
    )
    .replace("connectionId: conn\n", "connectionId: conn-2\n");
    apply(&namespace, &second);
    namespace
        .wait_for_condition("default-project", "Ready", "True", SOON)
        .await;
    namespace
        .wait_for_condition("second-project", "Ready", "True", SOON)
        .await;

    let puts = fake.calls_with_method("PUT").await;
    let project_of = |connection: &str| {
        let call = puts
            .iter()
            .find(|c| c["path"].as_str().unwrap().ends_with(connection))
            .unwrap();
        call["project_id"].as_str().unwrap().to_owned()
    };
    assert_eq!(project_of("/conn"), PROJECT_ID);
    assert_eq!(project_of("/conn-2"), SECOND_PROJECT_ID);
}

#[tokio::test]
async fn an_object_with_neither_organization_nor_session_is_refused() {
    install_crd();
    let namespace = TestNamespace::create("no-organization").await;

    let output = namespace.apply(&object("acme", ""));

    assert!(
        !output.success,
        "accepted an object without organization or session"
    );
    assert!(
        output.stderr.contains("organizationId"),
        "{}",
        output.stderr
    );
    assert!(
        output.stderr.contains("memberSessionRef"),
        "{}",
        output.stderr
    );
}
