//! `POST /v1/b2b/sessions/authenticate`: how a backend that holds only a member session learns
//! the member and its organization.
//!
//! The body names the session by `session_token` or by `session_jwt`, never both. The session's
//! lifetime is not extended: `session_duration_minutes` is read by nobody, and other fields are
//! ignored too. Member-session headers play no part in this call.

use std::sync::Arc;

use axum::{Extension, extract::State};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::{
    api::{Caller, Failure, Reply, RequestBody, StytchError, admit},
    app::App,
    faults::Operation,
    sessions::{LiveSession, SessionKey},
    state::Store,
    unconfirmed,
};

pub async fn authenticate(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Extension(body): Extension<RequestBody>,
) -> Reply {
    authenticate_session(&app, &caller, &body).await.into()
}

#[derive(Deserialize)]
struct AuthenticateRequest {
    session_token: Option<String>,
    session_jwt: Option<String>,
}

impl AuthenticateRequest {
    /// The session the body names. An empty string names nothing.
    fn key(self) -> Result<SessionKey, StytchError> {
        let present = |value: Option<String>| value.filter(|value| !value.is_empty());
        match (present(self.session_token), present(self.session_jwt)) {
            (Some(token), None) => Ok(SessionKey::Token(token)),
            (None, Some(jwt)) => Ok(SessionKey::Jwt(jwt)),
            (Some(_), Some(_)) => Err(unconfirmed::too_many_session_arguments()),
            (None, None) => Err(unconfirmed::missing_session_argument()),
        }
    }
}

async fn authenticate_session(
    app: &App,
    caller: &Caller,
    body: &RequestBody,
) -> Result<Map<String, Value>, Failure> {
    let organization = fault_organization(app, body);
    admit::admit(app, caller, Operation::AuthenticateSession, &organization).await?;
    let key = body.parse::<AuthenticateRequest>()?.key()?;

    let store = app.store();
    let live = store
        .live_session(&key, jiff::Timestamp::now())
        .ok_or_else(unconfirmed::session_not_found)?;
    tracing::debug!(
        member_id = %live.member.member_id,
        organization_id = %live.organization.organization_id,
        "member session authenticated"
    );
    Ok(authenticated(&store, live))
}

/// The organization a fault rule for this call matches: the named session's, whether or not it
/// is still live; `""` when the body names no known session.
fn fault_organization(app: &App, body: &RequestBody) -> String {
    let key = body
        .parse::<AuthenticateRequest>()
        .ok()
        .and_then(|request| request.key().ok());
    key.and_then(|key| app.store().session_organization_id(&key).map(str::to_owned))
        .unwrap_or_default()
}

fn authenticated(store: &Store, live: LiveSession<'_>) -> Map<String, Value> {
    let LiveSession {
        session,
        organization,
        member,
    } = live;
    let role_ids = store.member_role_ids(member);
    let member_roles: Vec<Value> = role_ids
        .iter()
        .map(|role_id| json!({"role_id": role_id}))
        .collect();

    let fields = [
        ("member_id", json!(member.member_id)),
        ("organization_id", json!(organization.organization_id)),
        (
            "member_session",
            json!({
                "member_session_id": session.member_session_id,
                "member_id": member.member_id,
                "organization_id": organization.organization_id,
                "expires_at": session.expires_at.to_string(),
                "roles": role_ids,
            }),
        ),
        (
            "member",
            json!({
                "member_id": member.member_id,
                "organization_id": organization.organization_id,
                "email_address": member.email_address,
                "roles": member_roles,
            }),
        ),
        (
            "organization",
            json!({
                "organization_id": organization.organization_id,
                "organization_slug": organization.slug,
                "organization_name": organization.name,
            }),
        ),
        ("session_token", json!(session.session_token)),
        ("session_jwt", json!(session.session_jwt)),
    ];
    fields
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect()
}
