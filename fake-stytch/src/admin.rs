//! The admin API under `/_fake/`: what tests use to set the fake up and look inside it.
//!
//! No authentication, no call log entries, no latency or faults. Errors are
//! `{"error": "..."}` with 400 (a body that does not parse or makes no sense), 404 (no such
//! organization, connection, member or session) or 409 (a name already taken). Secrets are
//! shown as fingerprints, never in clear, except in the answer that mints a member session.

mod members;

use std::{sync::Arc, time::Duration};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{delete, get, patch, post},
};
use serde::{Deserialize, de::DeserializeOwned};
use serde_json::{Value, json};

use crate::{
    app::{self, App},
    faults::FaultRule,
    ratelimit::RateLimit,
    seed::{self, OrganizationSeed, Seed},
    state::{ConnectionChanges, SecretView},
};

/// The admin routes, to be nested under `/_fake`.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/calls", get(list_calls).delete(clear_calls))
        .route("/state", get(export_state).put(replace_state))
        .route("/organizations", post(add_organization))
        .route(
            "/organizations/{organization_id}/connections/{connection_id}",
            patch(patch_connection),
        )
        .route(
            "/organizations/{organization_id}/members",
            post(members::add_member),
        )
        .route("/sessions", post(members::mint_session))
        .route("/sessions/{session}", delete(members::revoke_session))
        .route(
            "/roles",
            get(members::list_roles).put(members::replace_roles),
        )
        .route(
            "/faults",
            get(list_faults).put(replace_faults).delete(clear_faults),
        )
        .route(
            "/rate-limit",
            get(show_rate_limit)
                .put(set_rate_limit)
                .delete(clear_rate_limit),
        )
        .route("/latency", get(show_latency).put(set_latency))
        .fallback(|| async { AdminError::new(StatusCode::NOT_FOUND, "no such admin route") })
        .with_state(app)
}

/// An admin API error: `{"error": message}`.
#[derive(Debug)]
pub struct AdminError {
    status: StatusCode,
    message: String,
}

impl AdminError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({"error": self.message}))).into_response()
    }
}

type AdminResult = Result<Response, AdminError>;

/// Parses a JSON body into `T`, with serde's explanation when it does not fit.
fn parse<T: DeserializeOwned>(body: &Bytes) -> Result<T, AdminError> {
    serde_json::from_slice(body).map_err(|error| AdminError::bad_request(error.to_string()))
}

#[derive(Deserialize)]
struct CallsQuery {
    since: Option<u64>,
}

async fn list_calls(State(app): State<Arc<App>>, Query(query): Query<CallsQuery>) -> Response {
    Json(app.calls.entries(query.since)).into_response()
}

async fn clear_calls(State(app): State<Arc<App>>) -> StatusCode {
    app.calls.clear();
    StatusCode::NO_CONTENT
}

async fn export_state(State(app): State<Arc<App>>) -> Response {
    Json(seed::export(&app.store())).into_response()
}

async fn replace_state(State(app): State<Arc<App>>, body: Bytes) -> AdminResult {
    let seed: Seed = parse(&body)?;

    let mut store = app.store();
    *store = seed::build_store(seed, &store, &app.api_url)
        .map_err(|error| AdminError::bad_request(error.to_string()))?;
    Ok(Json(seed::export(&store)).into_response())
}

async fn add_organization(State(app): State<Arc<App>>, body: Bytes) -> AdminResult {
    let organization = parse::<OrganizationSeed>(&body)?.build(&app.api_url);

    let shown = seed::export_organization(&organization);
    seed::add_organization(&mut app.store(), organization)
        .map_err(|error| AdminError::new(StatusCode::CONFLICT, error.to_string()))?;
    Ok((StatusCode::CREATED, Json(shown)).into_response())
}

/// A change made behind the operator's back: any connection field, `redirect_url` included,
/// with no validation and no discovery. `status` and the ids in the body are ignored.
#[derive(Deserialize)]
struct ConnectionPatch {
    redirect_url: Option<String>,
    #[serde(flatten)]
    fields: ConnectionChanges,
}

async fn patch_connection(
    State(app): State<Arc<App>>,
    Path((organization, connection_id)): Path<(String, String)>,
    body: Bytes,
) -> AdminResult {
    let patch: ConnectionPatch = parse(&body)?;

    let mut store = app.store();
    let not_found = |what: &str| AdminError::new(StatusCode::NOT_FOUND, what);
    let connection = store
        .organization_mut(&organization)
        .ok_or_else(|| not_found("no such organization"))?
        .connection_mut(&connection_id)
        .ok_or_else(|| not_found("no such connection"))?;
    connection.apply(&patch.fields);
    if let Some(redirect_url) = patch.redirect_url {
        connection.redirect_url = redirect_url;
    }
    Ok(Json(connection.to_json(SecretView::Fingerprint)).into_response())
}

async fn list_faults(State(app): State<Arc<App>>) -> Response {
    Json(app.faults().current(app::now_ms())).into_response()
}

async fn replace_faults(State(app): State<Arc<App>>, body: Bytes) -> AdminResult {
    let rules: Vec<FaultRule> = parse(&body).map_err(|error| {
        AdminError::bad_request(format!(
            "{}; an action is one of {{\"latency_ms\": N}}, {{\"status\": S, \
             \"retry_after_secs\"?: N, \"error_type\"?: T, \"error_message\"?: M}}, \
             {{\"hang\": true}}, {{\"drop\": true}}",
            error.message
        ))
    })?;
    for (index, rule) in rules.iter().enumerate() {
        rule.validate()
            .map_err(|reason| AdminError::bad_request(format!("rule {index}: {reason}")))?;
    }

    app.faults().replace(rules.clone());
    Ok(Json(rules).into_response())
}

async fn clear_faults(State(app): State<Arc<App>>) -> StatusCode {
    app.faults().clear();
    StatusCode::NO_CONTENT
}

async fn show_rate_limit(State(app): State<Arc<App>>) -> Response {
    Json(app.rate_limiter().limit()).into_response()
}

/// Takes a limit, or `null` to remove it.
async fn set_rate_limit(State(app): State<Arc<App>>, body: Bytes) -> AdminResult {
    let limit: Option<RateLimit> = parse(&body)?;
    if let Some(limit) = &limit {
        limit.validate().map_err(AdminError::bad_request)?;
    }

    app.rate_limiter().set(limit);
    Ok(Json(limit).into_response())
}

async fn clear_rate_limit(State(app): State<Arc<App>>) -> StatusCode {
    app.rate_limiter().set(None);
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Latency {
    ms: u64,
}

fn latency_body(app: &App) -> Value {
    json!({"ms": u64::try_from(app.latency().as_millis()).unwrap_or(u64::MAX)})
}

async fn show_latency(State(app): State<Arc<App>>) -> Response {
    Json(latency_body(&app)).into_response()
}

async fn set_latency(State(app): State<Arc<App>>, body: Bytes) -> AdminResult {
    let latency: Latency = parse(&body)?;
    app.set_latency(Duration::from_millis(latency.ms));
    Ok(Json(latency_body(&app)).into_response())
}

#[cfg(test)]
mod tests {
    use axum::http::Method;

    use super::*;
    use crate::{
        redact,
        state::Status,
        testing::{CONNECTION_ID, Client, ORGANIZATION_ID},
    };

    fn patch_path(organization: &str) -> String {
        format!("/_fake/organizations/{organization}/connections/{CONNECTION_ID}")
    }

    #[tokio::test]
    async fn the_state_shows_secrets_only_as_fingerprints() {
        let client = Client::seeded();
        let secret = json!({"client_secret": "behind-the-back"});
        client
            .admin(Method::PATCH, &patch_path("acme"), Some(secret))
            .await;

        let state = client.admin(Method::GET, "/_fake/state", None).await;

        let text = state.json.to_string();
        assert!(!text.contains("behind-the-back") && !text.contains(crate::testing::SECRET));
        let connection = &state.json["organizations"][0]["connections"][0];
        assert_eq!(
            connection["client_secret"],
            redact::fingerprint("behind-the-back")
        );
        assert_eq!(state.json["organizations"][0]["slug"], "acme");
    }

    #[tokio::test]
    async fn a_patch_sets_fields_directly_recomputes_status_and_is_not_logged() {
        let client = Client::seeded();
        let fields = json!({
            "issuer": "http://not-even-https",
            "client_id": "c",
            "client_secret": "s",
            "authorization_url": "a",
            "token_url": "t",
            "userinfo_url": "u",
            "jwks_url": "j",
            "redirect_url": "https://elsewhere/callback",
            "status": "pending",
        });

        let answer = client
            .admin(Method::PATCH, &patch_path("acme-ext"), Some(fields))
            .await;

        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(answer.json["status"], "active");
        assert_eq!(answer.json["redirect_url"], "https://elsewhere/callback");
        assert_eq!(answer.json["client_secret"], redact::fingerprint("s"));
        assert!(client.calls().await.is_empty());
        let store = client.app.store();
        let connection = store
            .organization("acme")
            .unwrap()
            .connection(CONNECTION_ID)
            .unwrap();
        assert_eq!(connection.status(), Status::Active);
    }

    #[tokio::test]
    async fn a_patch_of_an_unknown_connection_is_a_404() {
        let client = Client::seeded();
        let path = format!("/_fake/organizations/{ORGANIZATION_ID}/connections/nope");

        let answer = client.admin(Method::PATCH, &path, Some(json!({}))).await;

        assert_eq!(answer.status, StatusCode::NOT_FOUND);
        assert_eq!(answer.json["error"], "no such connection");
    }

    #[tokio::test]
    async fn replacing_the_state_keeps_the_projects_unless_it_names_some() {
        let client = Client::seeded();
        let state = json!({"organizations": [{"organization_id": "organization-test-new"}]});

        let answer = client.admin(Method::PUT, "/_fake/state", Some(state)).await;

        assert_eq!(answer.status, StatusCode::OK);
        let listed = client
            .call(Method::GET, "/v1/b2b/sso/organization-test-new", None)
            .await;
        assert_eq!(
            listed.status,
            StatusCode::OK,
            "the seeded project still authenticates"
        );
        let gone = client.call(Method::GET, "/v1/b2b/sso/acme", None).await;
        assert_eq!(gone.status, StatusCode::NOT_FOUND);

        let without_projects = json!({"projects": [], "organizations": []});
        client
            .admin(Method::PUT, "/_fake/state", Some(without_projects))
            .await;
        let refused = client.call(Method::GET, "/v1/b2b/sso/acme", None).await;
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    }

    #[tokio::test]
    async fn an_added_organization_is_served_and_a_taken_slug_is_a_conflict() {
        let client = Client::seeded();
        let organization = json!({
            "organization_id": "organization-test-globex",
            "slug": "globex",
            "connections": [{"connection_id": "oidc-connection-test-globex", "client_id": "g"}],
        });

        let added = client
            .admin(Method::POST, "/_fake/organizations", Some(organization))
            .await;
        assert_eq!(added.status, StatusCode::CREATED);
        let listed = client.call(Method::GET, "/v1/b2b/sso/globex", None).await;
        assert_eq!(listed.json["oidc_connections"][0]["client_id"], "g");

        let clash = json!({"slug": "acme"});
        let refused = client
            .admin(Method::POST, "/_fake/organizations", Some(clash))
            .await;
        assert_eq!(refused.status, StatusCode::CONFLICT);
    }

    #[tokio::test]
    async fn faults_can_be_read_back_and_cleared() {
        let client = Client::seeded();
        let rules = json!([{"operation": "delete", "action": {"drop": true}, "times": 2}]);
        client
            .admin(Method::PUT, "/_fake/faults", Some(rules.clone()))
            .await;

        let shown = client.admin(Method::GET, "/_fake/faults", None).await;
        assert_eq!(shown.json, rules);

        client.admin(Method::DELETE, "/_fake/faults", None).await;
        let cleared = client.admin(Method::GET, "/_fake/faults", None).await;
        assert_eq!(cleared.json, json!([]));
    }

    #[tokio::test]
    async fn a_body_that_does_not_parse_is_a_400_with_a_reason() {
        let client = Client::seeded();

        let answer = client
            .admin(Method::PUT, "/_fake/rate-limit", Some(json!({"rps": 1})))
            .await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST);
        assert!(answer.json["error"].as_str().unwrap().contains("rps"));

        let unknown = client.admin(Method::GET, "/_fake/nothing", None).await;
        assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    }
}
