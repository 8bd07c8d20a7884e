//! Session authenticate and the RBAC check of member sessions, through the whole router.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{
    api::{MEMBER_SESSION_HEADER, MEMBER_SESSION_JWT_HEADER},
    redact,
    testing::{
        Answer, CONNECTION_ID, Client, JWT_ADMIN, MEMBER_ADMIN, ORGANIZATION_ID, PROJECT_ID,
        TOKEN_ADMIN, TOKEN_EXPIRED, TOKEN_GLOBEX, TOKEN_VIEWER, app, rbac_seed, update_path,
    },
};

const AUTHENTICATE_PATH: &str = "/v1/b2b/sessions/authenticate";
const LIST_PATH: &str = "/v1/b2b/sso/acme";

fn client() -> Client {
    Client::new(app(rbac_seed()))
}

async fn authenticate(client: &Client, body: Value) -> Answer {
    client
        .call(Method::POST, AUTHENTICATE_PATH, Some(body))
        .await
}

/// Each SSO call on `acme`, with the member-session header `name: value`.
async fn every_call(client: &Client, name: &str, value: &str) -> Vec<(&'static str, Answer)> {
    let header = [(name, value)];
    let update = update_path("acme", CONNECTION_ID);
    let delete = format!("/v1/b2b/sso/acme/connections/{CONNECTION_ID}");
    let create_body = json!({"display_name": "New"});
    vec![
        (
            "list",
            client
                .call_with(&header, Method::GET, LIST_PATH, None)
                .await,
        ),
        (
            "create",
            client
                .call_with(
                    &header,
                    Method::POST,
                    "/v1/b2b/sso/oidc/acme",
                    Some(create_body),
                )
                .await,
        ),
        (
            "update",
            client
                .call_with(&header, Method::PUT, &update, Some(json!({})))
                .await,
        ),
        (
            "delete",
            client
                .call_with(&header, Method::DELETE, &delete, None)
                .await,
        ),
    ]
}

#[tokio::test]
async fn session_authenticate_by_token_returns_the_member_its_organization_and_the_session() {
    let client = client();

    let answer = authenticate(&client, json!({"session_token": TOKEN_ADMIN})).await;

    assert_eq!(answer.status, StatusCode::OK);
    let body = &answer.json;
    assert_eq!(body["status_code"], 200);
    assert!(body["request_id"].is_string());
    assert_eq!(body["member_id"], MEMBER_ADMIN);
    assert_eq!(body["organization_id"], ORGANIZATION_ID);
    assert_eq!(body["member"]["organization_id"], ORGANIZATION_ID);
    assert_eq!(body["member"]["email_address"], "ada@acme.example");
    assert_eq!(
        body["member"]["roles"],
        json!([{"role_id": "stytch_admin"}, {"role_id": "stytch_member"}])
    );
    assert_eq!(
        body["organization"],
        json!({"organization_id": ORGANIZATION_ID, "organization_slug": "acme",
               "organization_name": "Acme Inc"})
    );
    let session = &body["member_session"];
    assert_eq!(session["member_id"], MEMBER_ADMIN);
    assert_eq!(session["organization_id"], ORGANIZATION_ID);
    assert_eq!(session["roles"], json!(["stytch_admin", "stytch_member"]));
    assert!(
        session["member_session_id"]
            .as_str()
            .unwrap()
            .starts_with("member-session-test-")
    );
    assert!(session["expires_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(body["session_token"], TOKEN_ADMIN);
    assert_eq!(body["session_jwt"], JWT_ADMIN);
}

#[tokio::test]
async fn session_authenticate_by_jwt_finds_the_same_session() {
    let client = client();

    let by_token = authenticate(&client, json!({"session_token": TOKEN_ADMIN})).await;
    let by_jwt = authenticate(
        &client,
        json!({"session_jwt": JWT_ADMIN, "session_duration_minutes": 60}),
    )
    .await;

    assert_eq!(by_jwt.status, StatusCode::OK);
    assert_eq!(
        by_jwt.json["member_session"],
        by_token.json["member_session"]
    );
    assert_eq!(by_jwt.json["session_token"], TOKEN_ADMIN);
}

#[tokio::test]
async fn a_token_sent_as_a_jwt_names_no_session() {
    let client = client();

    let answer = authenticate(&client, json!({"session_jwt": TOKEN_ADMIN})).await;

    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(answer.json["error_type"], "session_not_found");
}

#[tokio::test]
async fn an_expired_session_is_not_found_by_authenticate_nor_by_rbac() {
    let client = client();

    let authenticated = authenticate(&client, json!({"session_token": TOKEN_EXPIRED})).await;
    let listed = client
        .call_with(
            &[(MEMBER_SESSION_HEADER, TOKEN_EXPIRED)],
            Method::GET,
            LIST_PATH,
            None,
        )
        .await;

    for answer in [authenticated, listed] {
        assert_eq!(answer.status, StatusCode::NOT_FOUND);
        assert_eq!(answer.json["error_type"], "session_not_found");
        assert_eq!(answer.json["status_code"], 404);
    }
}

#[tokio::test]
async fn a_session_minted_with_no_time_to_live_has_already_expired() {
    let client = client();
    let minted = client
        .admin(
            Method::POST,
            "/_fake/sessions",
            Some(json!({"member_id": MEMBER_ADMIN, "ttl_secs": 0})),
        )
        .await;

    let token = minted.json["session_token"].as_str().unwrap();
    let answer = authenticate(&client, json!({"session_token": token})).await;

    assert_eq!(answer.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_revoked_session_is_not_found_by_token_nor_by_jwt() {
    let client = client();
    let before = authenticate(&client, json!({"session_jwt": JWT_ADMIN})).await;
    assert_eq!(before.status, StatusCode::OK);

    let revoked = client
        .admin(
            Method::DELETE,
            &format!("/_fake/sessions/{TOKEN_ADMIN}"),
            None,
        )
        .await;

    assert_eq!(revoked.status, StatusCode::NO_CONTENT);
    for body in [
        json!({"session_token": TOKEN_ADMIN}),
        json!({"session_jwt": JWT_ADMIN}),
    ] {
        let answer = authenticate(&client, body).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND);
        assert_eq!(answer.json["error_type"], "session_not_found");
    }
    let listed = client
        .call_with(
            &[(MEMBER_SESSION_JWT_HEADER, JWT_ADMIN)],
            Method::GET,
            LIST_PATH,
            None,
        )
        .await;
    assert_eq!(listed.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn session_authenticate_needs_exactly_one_of_token_and_jwt() {
    let client = client();

    let neither = authenticate(&client, json!({"session_token": ""})).await;
    let both = authenticate(
        &client,
        json!({"session_token": TOKEN_ADMIN, "session_jwt": JWT_ADMIN}),
    )
    .await;

    assert_eq!(neither.status, StatusCode::BAD_REQUEST);
    assert_eq!(neither.json["error_type"], "invalid_argument");
    assert_eq!(both.status, StatusCode::BAD_REQUEST);
    assert_eq!(both.json["error_type"], "too_many_session_arguments");
}

#[tokio::test]
async fn session_authenticate_needs_the_projects_credentials() {
    let client = client();
    let body = json!({"session_token": TOKEN_ADMIN});

    let answer = client
        .call_as(
            Some((PROJECT_ID, "wrong")),
            Method::POST,
            AUTHENTICATE_PATH,
            Some(body),
        )
        .await;

    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer.json["error_type"], "unauthorized_credentials");
}

#[tokio::test]
async fn an_admin_member_session_may_make_every_call_by_token_or_by_jwt() {
    for (name, value) in [
        (MEMBER_SESSION_HEADER, TOKEN_ADMIN),
        (MEMBER_SESSION_JWT_HEADER, JWT_ADMIN),
    ] {
        let client = client();

        for (call, answer) in every_call(&client, name, value).await {
            assert_eq!(
                answer.status,
                StatusCode::OK,
                "{name} {call}: {}",
                answer.json
            );
        }
    }
}

#[tokio::test]
async fn without_member_session_headers_the_project_has_full_rights() {
    let client = client();
    client
        .admin(Method::PUT, "/_fake/roles", Some(json!([])))
        .await;

    let listed = client.call(Method::GET, LIST_PATH, None).await;
    let updated = client
        .call(
            Method::PUT,
            &update_path("acme", CONNECTION_ID),
            Some(json!({"client_id": "c"})),
        )
        .await;

    assert_eq!(listed.status, StatusCode::OK);
    assert_eq!(updated.status, StatusCode::OK);
    let calls = client.calls().await;
    assert_eq!(calls[0]["member_session"], Value::Null);
    assert_eq!(calls[0]["member_session_fingerprint"], Value::Null);
}

#[tokio::test]
async fn a_member_session_of_another_organization_gets_a_tenancy_error() {
    let client = client();

    for (call, answer) in every_call(&client, MEMBER_SESSION_HEADER, TOKEN_GLOBEX).await {
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{call}");
        assert_eq!(
            answer.json["error_type"], "session_authorization_tenancy_error",
            "{call}"
        );
    }
    let listed = client.call(Method::GET, LIST_PATH, None).await;
    assert_eq!(
        listed.json["oidc_connections"][0]["connection_id"], CONNECTION_ID,
        "nothing was created, changed or deleted"
    );
}

#[tokio::test]
async fn a_missing_permission_is_a_403_naming_the_action_and_the_resource() {
    let client = client();

    let answers = every_call(&client, MEMBER_SESSION_HEADER, TOKEN_VIEWER).await;

    for (call, answer) in answers {
        if call == "list" {
            assert_eq!(answer.status, StatusCode::OK, "a viewer may list");
            continue;
        }
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{call}");
        assert_eq!(answer.json["error_type"], "session_authorization_error");
        let message = answer.json["error_message"].as_str().unwrap();
        assert_eq!(
            message,
            format!("Member is not authorized to perform {call} on stytch.sso.")
        );
    }
}

#[tokio::test]
async fn list_needs_get_on_stytch_sso() {
    let client = client();
    let update_only = json!({"resource_id": "stytch.sso", "actions": ["update"]});
    let editor_only = json!([{"role_id": "sso_viewer", "permissions": [update_only]}]);
    client
        .admin(Method::PUT, "/_fake/roles", Some(editor_only))
        .await;

    let listed = client
        .call_with(
            &[(MEMBER_SESSION_HEADER, TOKEN_VIEWER)],
            Method::GET,
            LIST_PATH,
            None,
        )
        .await;

    assert_eq!(listed.status, StatusCode::FORBIDDEN);
    assert_eq!(
        listed.json["error_message"],
        "Member is not authorized to perform get on stytch.sso."
    );
}

#[tokio::test]
async fn the_organization_may_be_named_by_slug_id_or_external_id_under_rbac() {
    let client = client();

    for reference in ["acme", ORGANIZATION_ID, "acme-ext"] {
        let answer = client
            .call_with(
                &[(MEMBER_SESSION_HEADER, TOKEN_VIEWER)],
                Method::GET,
                &format!("/v1/b2b/sso/{reference}"),
                None,
            )
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{reference}");
    }
}

#[tokio::test]
async fn both_member_session_headers_at_once_are_a_400() {
    let client = client();
    let headers = [
        (MEMBER_SESSION_HEADER, TOKEN_ADMIN),
        (MEMBER_SESSION_JWT_HEADER, JWT_ADMIN),
    ];

    let answer = client
        .call_with(&headers, Method::GET, LIST_PATH, None)
        .await;

    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.json["error_type"], "too_many_session_arguments");
    let calls = client.calls().await;
    assert_eq!(calls[0]["member_session"], "both");
}

#[tokio::test]
async fn an_unknown_member_session_is_a_404_even_with_an_empty_header() {
    let client = client();

    for value in ["session-token-test-nobody", ""] {
        let answer = client
            .call_with(
                &[(MEMBER_SESSION_HEADER, value)],
                Method::GET,
                LIST_PATH,
                None,
            )
            .await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{value:?}");
        assert_eq!(answer.json["error_type"], "session_not_found");
    }
}

#[tokio::test]
async fn the_call_log_shows_the_member_session_as_a_fingerprint_not_the_token() {
    let client = client();
    client
        .call_with(
            &[(MEMBER_SESSION_HEADER, TOKEN_ADMIN)],
            Method::GET,
            LIST_PATH,
            None,
        )
        .await;
    client
        .call_with(
            &[(MEMBER_SESSION_JWT_HEADER, JWT_ADMIN)],
            Method::GET,
            LIST_PATH,
            None,
        )
        .await;
    authenticate(
        &client,
        json!({"session_token": TOKEN_VIEWER, "nested": {"session_jwt": "x.y.z"}}),
    )
    .await;

    let calls = client.calls().await;

    assert_eq!(calls[0]["member_session"], "token");
    assert_eq!(
        calls[0]["member_session_fingerprint"],
        redact::fingerprint(TOKEN_ADMIN)
    );
    assert_eq!(calls[1]["member_session"], "jwt");
    assert_eq!(
        calls[1]["member_session_fingerprint"],
        redact::fingerprint(JWT_ADMIN)
    );
    assert_eq!(
        calls[2]["body"]["session_token"],
        redact::fingerprint(TOKEN_VIEWER)
    );
    assert_eq!(
        calls[2]["body"]["nested"]["session_jwt"],
        redact::fingerprint("x.y.z")
    );
    let text = serde_json::to_string(&calls).unwrap();
    for secret in [TOKEN_ADMIN, JWT_ADMIN, TOKEN_VIEWER, "x.y.z"] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
}

#[tokio::test]
async fn rbac_comes_after_credentials_and_a_refused_call_uses_up_no_fault_rule() {
    let client = client();
    let rules = json!([{"operation": "any", "action": {"status": 503}, "times": 1}]);
    client
        .admin(Method::PUT, "/_fake/faults", Some(rules))
        .await;
    let header = [(MEMBER_SESSION_HEADER, TOKEN_GLOBEX)];

    let unauthenticated = client
        .call_as(Some((PROJECT_ID, "wrong")), Method::GET, LIST_PATH, None)
        .await;
    let refused = client
        .call_with(&header, Method::GET, LIST_PATH, None)
        .await;
    let faulted = client.call(Method::GET, LIST_PATH, None).await;

    assert_eq!(unauthenticated.status, StatusCode::UNAUTHORIZED);
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(faulted.status, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn a_fault_rule_can_target_session_authenticate_for_one_organization() {
    let client = client();
    let rules = json!([{"operation": "authenticate_session", "organization_id": "globex",
                        "action": {"status": 500}}]);
    let set = client
        .admin(Method::PUT, "/_fake/faults", Some(rules))
        .await;
    assert_eq!(set.status, StatusCode::OK);

    let acme = authenticate(&client, json!({"session_token": TOKEN_ADMIN})).await;
    let globex = authenticate(&client, json!({"session_token": TOKEN_GLOBEX})).await;
    let listed = client.call(Method::GET, "/v1/b2b/sso/globex", None).await;

    assert_eq!(acme.status, StatusCode::OK);
    assert_eq!(globex.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(listed.status, StatusCode::OK);
}
