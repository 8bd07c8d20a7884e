//! The Stytch API's behaviour, through the whole in-process router.

use std::time::{Duration, Instant};

use axum::{
    body::Body,
    http::{Method, Request, StatusCode, header},
};
use serde_json::{Value, json};

use crate::{
    redact,
    testing::{CONNECTION_ID, Client, ORGANIZATION_ID, PROJECT_ID, SECRET, seed, update_path},
};

const LIST_PATH: &str = "/v1/b2b/sso/acme";

/// Every field the activation rule needs, with explicit URLs so no discovery result matters.
fn complete_update() -> Value {
    json!({
        "issuer": "https://acme.okta.com",
        "client_id": "client-id",
        "client_secret": "client-secret-1",
        "authorization_url": "https://acme.okta.com/oauth2/v1/authorize",
        "token_url": "https://acme.okta.com/oauth2/v1/token",
        "userinfo_url": "https://acme.okta.com/oauth2/v1/userinfo",
        "jwks_url": "https://acme.okta.com/oauth2/v1/keys",
    })
}

async fn update(client: &Client, body: Value) -> crate::testing::Answer {
    client
        .call(
            Method::PUT,
            &update_path(ORGANIZATION_ID, CONNECTION_ID),
            Some(body),
        )
        .await
}

#[tokio::test]
async fn wrong_or_missing_credentials_get_401_in_stytch_error_shape() {
    let client = Client::seeded();

    for credentials in [
        Some((PROJECT_ID, "wrong")),
        Some(("project-test-other", SECRET)),
        None,
    ] {
        let answer = client
            .call_as(credentials, Method::GET, LIST_PATH, None)
            .await;

        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
        assert_eq!(answer.json["status_code"], 401);
        assert_eq!(answer.json["error_type"], "unauthorized_credentials");
        assert!(
            answer.json["request_id"]
                .as_str()
                .unwrap()
                .starts_with("request-id-test-")
        );
        assert!(answer.json["error_message"].is_string());
        assert!(answer.json["error_url"].is_string());
    }
}

#[tokio::test]
async fn without_any_project_every_call_is_refused() {
    let mut seeded = seed();
    seeded["projects"] = json!([]);
    let client = Client::new(crate::testing::app(seeded));

    let answer = client.call(Method::GET, LIST_PATH, None).await;

    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn list_finds_the_organization_by_id_slug_or_external_id() {
    let client = Client::seeded();

    for reference in [ORGANIZATION_ID, "acme", "acme-ext"] {
        let answer = client
            .call(Method::GET, &format!("/v1/b2b/sso/{reference}"), None)
            .await;

        assert_eq!(answer.status, StatusCode::OK, "{reference}");
        assert_eq!(answer.json["status_code"], 200);
        assert_eq!(answer.json["saml_connections"], json!([]));
        assert_eq!(answer.json["external_connections"], json!([]));
        let connection = &answer.json["oidc_connections"][0];
        assert_eq!(connection["connection_id"], CONNECTION_ID);
        assert_eq!(connection["organization_id"], ORGANIZATION_ID);
        assert_eq!(connection["status"], "pending");
        assert_eq!(connection["client_id"], "");
    }
}

#[tokio::test]
async fn path_segments_are_percent_decoded() {
    let client = Client::seeded();
    let added = json!({"organization_id": "organization-test-2", "slug": "acme corp/emea"});
    client
        .admin(Method::POST, "/_fake/organizations", Some(added))
        .await;

    let answer = client
        .call(Method::GET, "/v1/b2b/sso/acme%20corp%2Femea", None)
        .await;

    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.json["oidc_connections"], json!([]));
}

#[tokio::test]
async fn unknown_organizations_and_connections_are_404s() {
    let client = Client::seeded();

    let answer = client.call(Method::GET, "/v1/b2b/sso/nobody", None).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(answer.json["error_type"], "organization_not_found");

    let answer = update(&client, json!({})).await;
    assert_eq!(answer.status, StatusCode::OK);
    let answer = client
        .call(
            Method::PUT,
            &update_path("acme", "oidc-connection-test-x"),
            Some(json!({})),
        )
        .await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(answer.json["error_type"], "oidc_connection_not_found");
}

#[tokio::test]
async fn create_makes_a_pending_connection_with_a_callback_redirect_url() {
    let client = Client::seeded();
    let body = json!({"display_name": "New", "identity_provider": "okta"});

    let answer = client
        .call(Method::POST, "/v1/b2b/sso/oidc/acme", Some(body))
        .await;

    assert_eq!(answer.status, StatusCode::OK);
    let connection = &answer.json["connection"];
    let connection_id = connection["connection_id"].as_str().unwrap();
    assert!(connection_id.starts_with("oidc-connection-test-"));
    assert_eq!(connection["status"], "pending");
    assert_eq!(connection["display_name"], "New");
    assert_eq!(connection["identity_provider"], "okta");
    assert_eq!(
        connection["redirect_url"],
        format!("http://fake-stytch.test/v1/b2b/sso/callback/{connection_id}")
    );
    let listed = client.call(Method::GET, LIST_PATH, None).await;
    assert_eq!(listed.json["oidc_connections"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn an_update_with_all_seven_fields_activates_the_connection() {
    let client = Client::seeded();

    let answer = update(&client, complete_update()).await;

    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.json["status_code"], 200);
    let connection = &answer.json["connection"];
    assert_eq!(connection["status"], "active");
    assert_eq!(
        connection["client_secret"], "client-secret-1",
        "Stytch returns it in clear"
    );
    assert_eq!(
        connection["display_name"], "Acme",
        "absent fields stay as they were"
    );
}

#[tokio::test]
async fn a_remote_issuer_gives_a_warning_and_the_update_still_applies() {
    let client = Client::seeded();

    let answer = update(&client, complete_update()).await;

    let warning = answer.json["warning"].as_str().unwrap();
    assert!(
        warning.contains("https://acme.okta.com/.well-known/openid-configuration"),
        "{warning}"
    );
    assert_eq!(answer.json["connection"]["issuer"], "https://acme.okta.com");
}

#[tokio::test]
async fn an_update_that_keeps_the_issuer_runs_no_discovery() {
    let client = Client::seeded();
    update(&client, complete_update()).await;

    let answer = update(
        &client,
        json!({"issuer": "https://acme.okta.com", "client_id": "2"}),
    )
    .await;

    assert_eq!(answer.json.get("warning"), None);
    assert_eq!(answer.json["connection"]["client_id"], "2");
}

#[tokio::test]
async fn an_empty_string_clears_a_field_and_deactivates_the_connection() {
    let client = Client::seeded();
    update(&client, complete_update()).await;

    let answer = update(&client, json!({"client_id": "", "token_url": null})).await;

    let connection = &answer.json["connection"];
    assert_eq!(connection["client_id"], "");
    assert_eq!(
        connection["token_url"],
        "https://acme.okta.com/oauth2/v1/token"
    );
    assert_eq!(connection["status"], "pending");
}

#[tokio::test]
async fn custom_scopes_and_attribute_mapping_are_stored_as_given() {
    let client = Client::seeded();
    let mapping = json!({"email": "mail", "full_name": "name"});

    let body = json!({"custom_scopes": "openid groups", "attribute_mapping": mapping});
    let answer = update(&client, body).await;

    assert_eq!(answer.json["connection"]["custom_scopes"], "openid groups");
    assert_eq!(answer.json["connection"]["attribute_mapping"], mapping);
}

#[tokio::test]
async fn a_rejected_update_changes_nothing() {
    let client = Client::seeded();
    let cases = [
        (
            json!({"display_name": "x", "identity_provider": "microsoftentra"}),
            "invalid_sso_idp",
        ),
        (
            json!({"display_name": "x", "issuer": "http://idp"}),
            "oidc_connection_issuer_url_invalid_format",
        ),
        (
            json!({"display_name": "x", "jwks_url": "ftp://idp"}),
            "oidc_connection_jwks_url_invalid_format",
        ),
        (
            json!({"display_name": "x", "client_secret": "s".repeat(4097)}),
            "client_secret_too_long",
        ),
        (
            json!({"display_name": "x", "attribute_mapping": "nope"}),
            "bad_request",
        ),
    ];

    for (body, expected) in cases {
        let answer = update(&client, body).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{expected}");
        assert_eq!(answer.json["error_type"], expected);
    }
    let listed = client.call(Method::GET, LIST_PATH, None).await;
    assert_eq!(listed.json["oidc_connections"][0]["display_name"], "Acme");
}

#[tokio::test]
async fn what_official_sdks_add_is_tolerated() {
    let client = Client::seeded();
    let ids = json!({"organization_id": ORGANIZATION_ID, "connection_id": CONNECTION_ID});

    let listed = client
        .call(
            Method::GET,
            "/v1/b2b/sso/acme?organization_id=acme",
            Some(ids.clone()),
        )
        .await;
    assert_eq!(listed.status, StatusCode::OK);

    let mut body = ids.clone();
    body["display_name"] = json!("Renamed");
    let updated = update(&client, body).await;
    assert_eq!(updated.json["connection"]["display_name"], "Renamed");

    let path = format!("/v1/b2b/sso/acme/connections/{CONNECTION_ID}");
    let deleted = client.call(Method::DELETE, &path, Some(ids)).await;
    assert_eq!(deleted.status, StatusCode::OK);
}

#[tokio::test]
async fn a_body_with_a_charset_parameter_is_refused() {
    let client = Client::seeded();
    let request = Request::put(update_path(ORGANIZATION_ID, CONNECTION_ID))
        .header(header::AUTHORIZATION, basic())
        .header(header::CONTENT_TYPE, "application/json; charset=utf-8")
        .body(Body::from("{}"))
        .unwrap();

    let answer = client.send(request).await;

    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.json["error_type"], "invalid_content_type");
}

fn basic() -> String {
    use base64::{Engine, prelude::BASE64_STANDARD};
    format!(
        "Basic {}",
        BASE64_STANDARD.encode(format!("{PROJECT_ID}:{SECRET}"))
    )
}

#[tokio::test]
async fn delete_removes_the_connection_and_names_it() {
    let client = Client::seeded();
    let path = format!("/v1/b2b/sso/acme-ext/connections/{CONNECTION_ID}");

    let answer = client.call(Method::DELETE, &path, None).await;

    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.json["connection_id"], CONNECTION_ID);
    assert!(answer.json["request_id"].is_string());
    let again = client.call(Method::DELETE, &path, None).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_in_stytch_error_shape() {
    let client = Client::seeded();

    let answer = client.call(Method::GET, "/v1/b2b/nothing", None).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(answer.json["error_type"], "route_not_found");

    let answer = client.call(Method::PATCH, LIST_PATH, None).await;
    assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(answer.json["request_id"].is_string());
}

#[tokio::test]
async fn the_call_log_records_each_call_with_the_client_secret_redacted() {
    let client = Client::seeded();
    update(&client, complete_update()).await;
    client
        .call_as(
            Some((PROJECT_ID, "wrong")),
            Method::GET,
            "/v1/b2b/sso/acme?x=1",
            None,
        )
        .await;

    let calls = client.calls().await;

    assert_eq!(calls.len(), 2);
    let first = &calls[0];
    assert_eq!(first["seq"], 1);
    assert_eq!(first["method"], "PUT");
    assert_eq!(first["path"], update_path(ORGANIZATION_ID, CONNECTION_ID));
    assert_eq!(first["project_id"], PROJECT_ID);
    assert_eq!(first["status"], 200);
    assert_eq!(
        first["body"]["client_secret"],
        redact::fingerprint("client-secret-1")
    );
    assert_eq!(first["body"]["client_id"], "client-id");
    assert!(first.get("error_type").is_none());
    assert!(first["time"].is_string());
    let text = serde_json::to_string(&calls).unwrap();
    assert!(
        !text.contains("client-secret-1") && !text.contains(SECRET),
        "{text}"
    );

    let second = &calls[1];
    assert_eq!(second["status"], 401);
    assert_eq!(second["error_type"], "unauthorized_credentials");
    assert_eq!(second["query"], "x=1");
    assert_eq!(second["body"], Value::Null);
}

#[tokio::test]
async fn the_call_log_can_be_read_from_a_sequence_number_and_cleared() {
    let client = Client::seeded();
    for _ in 0..3 {
        client.call(Method::GET, LIST_PATH, None).await;
    }

    let since = client
        .admin(Method::GET, "/_fake/calls?since=2", None)
        .await;
    assert_eq!(since.json.as_array().unwrap().len(), 1);
    assert_eq!(since.json[0]["seq"], 3);

    client.admin(Method::DELETE, "/_fake/calls", None).await;
    assert!(client.calls().await.is_empty());
}

#[tokio::test]
async fn admin_calls_and_the_issuer_are_not_in_the_call_log() {
    let client = Client::seeded();
    client.admin(Method::GET, "/_fake/state", None).await;
    client
        .admin(Method::PUT, "/_fake/latency", Some(json!({"ms": 0})))
        .await;

    assert!(client.calls().await.is_empty());
}

#[tokio::test]
async fn a_status_fault_answers_with_its_error_and_is_logged() {
    let client = Client::seeded();
    let rules = json!([
        {"operation": "list", "action": {"status": 429, "retry_after_secs": 7}, "times": 1},
        {"operation": "list", "action": {"status": 429}, "times": 1},
        {"operation": "update", "organization_id": "acme", "action": {"status": 503}},
        {"operation": "any", "action": {"status": 418, "error_type": "teapot"}, "times": 1},
    ]);
    let set = client
        .admin(Method::PUT, "/_fake/faults", Some(rules))
        .await;
    assert_eq!(set.status, StatusCode::OK);

    let asked = client.call(Method::GET, LIST_PATH, None).await;
    assert_eq!(asked.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(asked.json["error_type"], "too_many_requests");
    assert_eq!(asked.headers.get(header::RETRY_AFTER).unwrap(), "7");

    let unasked = client.call(Method::GET, LIST_PATH, None).await;
    assert_eq!(unasked.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        unasked.headers.get(header::RETRY_AFTER).is_none(),
        "Retry-After only when asked"
    );

    let unavailable = update(&client, json!({})).await;
    assert_eq!(unavailable.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(unavailable.json["error_type"], "server_unavailable");

    let teapot = client.call(Method::GET, LIST_PATH, None).await;
    assert_eq!(teapot.status.as_u16(), 418);
    assert_eq!(teapot.json["error_type"], "teapot");

    let normal = client.call(Method::GET, LIST_PATH, None).await;
    assert_eq!(normal.status, StatusCode::OK, "the list rules have expired");

    let statuses: Vec<Value> = client
        .calls()
        .await
        .iter()
        .map(|call| call["status"].clone())
        .collect();
    assert_eq!(
        statuses,
        [json!(429), json!(429), json!(503), json!(418), json!(200)]
    );
    let remaining = client.admin(Method::GET, "/_fake/faults", None).await;
    assert_eq!(remaining.json.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_fault_rule_that_makes_no_sense_is_refused() {
    let client = Client::seeded();

    for rules in [
        json!([{"operation": "list", "action": {"status": 418}}]),
        json!([{"operation": "list", "action": {"hang": true, "status": 500}}]),
        json!([{"operation": "fetch", "action": {"status": 500}}]),
    ] {
        let answer = client
            .admin(Method::PUT, "/_fake/faults", Some(rules.clone()))
            .await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{rules}");
        assert!(answer.json["error"].is_string());
    }
}

#[tokio::test]
async fn a_fault_rule_does_not_apply_to_calls_with_wrong_credentials() {
    let client = Client::seeded();
    let rules = json!([{"operation": "any", "action": {"status": 500}, "times": 1}]);
    client
        .admin(Method::PUT, "/_fake/faults", Some(rules))
        .await;

    let refused = client.call_as(None, Method::GET, LIST_PATH, None).await;
    let faulted = client.call(Method::GET, LIST_PATH, None).await;

    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert_eq!(faulted.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(faulted.json["error_type"], "internal_server_error");
}

#[tokio::test]
async fn a_hanging_call_is_logged_with_status_zero_and_never_answered() {
    let client = Client::seeded();
    let rules = json!([{"operation": "list", "action": {"hang": true}}]);
    client
        .admin(Method::PUT, "/_fake/faults", Some(rules))
        .await;

    let waited = tokio::time::timeout(
        Duration::from_millis(200),
        client.call(Method::GET, LIST_PATH, None),
    );

    assert!(waited.await.is_err(), "a hang must not answer");
    let calls = client.calls().await;
    assert_eq!(calls[0]["status"], 0);
}

#[tokio::test]
async fn a_latency_fault_delays_the_call_then_answers_normally() {
    let client = Client::seeded();
    let rules = json!([{"operation": "list", "action": {"latency_ms": 60}, "times": 1}]);
    client
        .admin(Method::PUT, "/_fake/faults", Some(rules))
        .await;
    let started = Instant::now();

    let answer = client.call(Method::GET, LIST_PATH, None).await;

    assert_eq!(answer.status, StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(60));
}

#[tokio::test]
async fn the_global_latency_applies_to_every_call() {
    let client = Client::seeded();
    client
        .admin(Method::PUT, "/_fake/latency", Some(json!({"ms": 60})))
        .await;
    let started = Instant::now();

    client.call_as(None, Method::GET, LIST_PATH, None).await;

    assert!(started.elapsed() >= Duration::from_millis(60));
    let shown = client.admin(Method::GET, "/_fake/latency", None).await;
    assert_eq!(shown.json, json!({"ms": 60}));
}

#[tokio::test]
async fn over_the_rate_limit_calls_get_429_without_retry_after() {
    let client = Client::seeded();
    let limit = json!({"requests_per_second": 0.5, "burst": 2});
    let set = client
        .admin(Method::PUT, "/_fake/rate-limit", Some(limit))
        .await;
    assert_eq!(set.status, StatusCode::OK);

    let mut statuses = vec![];
    for _ in 0..3 {
        let answer = client.call(Method::GET, LIST_PATH, None).await;
        statuses.push(answer.status.as_u16());
        if answer.status == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(answer.json["error_type"], "too_many_requests");
            assert!(answer.headers.get(header::RETRY_AFTER).is_none());
        }
    }
    assert_eq!(statuses, [200, 200, 429]);

    client
        .admin(Method::PUT, "/_fake/rate-limit", Some(Value::Null))
        .await;
    assert_eq!(
        client.call(Method::GET, LIST_PATH, None).await.status,
        StatusCode::OK
    );
}
