//! The admin routes for members, member sessions and roles.
//!
//! Minting a session is the one admin answer with secrets in clear: the test needs the token and
//! JWT to present them, and the fake keeps nothing else from which they could be learnt.

use std::{sync::Arc, time::Duration};

use axum::{
    Json,
    body::Bytes,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::json;

use super::{AdminError, AdminResult, parse};
use crate::{
    app::App,
    rbac::{self, Role},
    seed::MemberSeed,
    sessions::{self, MINTED_SESSION_LIFETIME, Session},
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MintRequest {
    member_id: String,
    /// Seconds from now; 0 makes a session that has already expired.
    #[serde(default)]
    ttl_secs: Option<u64>,
}

/// `POST /_fake/sessions`: a new session for an existing member.
pub async fn mint_session(State(app): State<Arc<App>>, body: Bytes) -> AdminResult {
    let request: MintRequest = parse(&body)?;
    let lifetime = request
        .ttl_secs
        .map_or(MINTED_SESSION_LIFETIME, Duration::from_secs);
    let expires_at = sessions::expiry_after(Timestamp::now(), lifetime);

    let mut store = app.store();
    let (organization, _) = store
        .member(&request.member_id)
        .ok_or_else(|| AdminError::new(StatusCode::NOT_FOUND, "no such member"))?;
    let session = Session::mint(
        &request.member_id,
        &organization.organization_id,
        expires_at,
    );
    let shown = json!({
        "member_session_id": session.member_session_id,
        "session_token": session.session_token,
        "session_jwt": session.session_jwt,
        "member_id": session.member_id,
        "organization_id": session.organization_id,
        "expires_at": session.expires_at.to_string(),
    });
    tracing::debug!(
        member_id = %session.member_id,
        member_session_id = %session.member_session_id,
        "member session minted"
    );
    store.sessions.push(session);
    Ok((StatusCode::CREATED, Json(shown)).into_response())
}

/// `DELETE /_fake/sessions/{session}`: revokes the session with this token (or JWT).
pub async fn revoke_session(
    State(app): State<Arc<App>>,
    Path(secret): Path<String>,
) -> AdminResult {
    if app.store().revoke_session(&secret) {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(AdminError::new(StatusCode::NOT_FOUND, "no such session"))
    }
}

/// `POST /_fake/organizations/{organization_id}/members`.
pub async fn add_member(
    State(app): State<Arc<App>>,
    Path(organization): Path<String>,
    body: Bytes,
) -> AdminResult {
    let member = parse::<MemberSeed>(&body)?.build();

    let mut store = app.store();
    if store.member(&member.member_id).is_some() {
        return Err(AdminError::new(
            StatusCode::CONFLICT,
            format!("member id {:?} is taken", member.member_id),
        ));
    }
    let found = store
        .organization_mut(&organization)
        .ok_or_else(|| AdminError::new(StatusCode::NOT_FOUND, "no such organization"))?;
    let shown = json!({
        "member_id": member.member_id,
        "organization_id": found.organization_id,
        "email_address": member.email_address,
        "roles": member.roles,
    });
    found.members.push(member);
    Ok((StatusCode::CREATED, Json(shown)).into_response())
}

/// `GET /_fake/roles`: the roles in force, built-in ones included.
pub async fn list_roles(State(app): State<Arc<App>>) -> Response {
    Json(app.store().effective_roles()).into_response()
}

/// `PUT /_fake/roles`: replaces the defined roles; the built-in ones stay unless replaced.
pub async fn replace_roles(State(app): State<Arc<App>>, body: Bytes) -> AdminResult {
    let roles: Vec<Role> = parse(&body)?;
    rbac::check_roles(&roles).map_err(AdminError::bad_request)?;

    let mut store = app.store();
    store.roles = roles;
    Ok(Json(store.effective_roles()).into_response())
}

#[cfg(test)]
mod tests {
    use axum::http::Method;
    use serde_json::Value;

    use super::*;
    use crate::{
        redact,
        testing::{Client, MEMBER_ADMIN, ORGANIZATION_ID, TOKEN_ADMIN, rbac_seed},
    };

    fn client() -> Client {
        Client::new(crate::testing::app(rbac_seed()))
    }

    async fn mint(client: &Client, body: Value) -> crate::testing::Answer {
        client
            .admin(Method::POST, "/_fake/sessions", Some(body))
            .await
    }

    #[tokio::test]
    async fn a_minted_session_is_returned_in_clear_and_shown_as_fingerprints_in_the_state() {
        let client = client();

        let minted = mint(&client, json!({"member_id": MEMBER_ADMIN, "ttl_secs": 120})).await;

        assert_eq!(minted.status, StatusCode::CREATED);
        let token = minted.json["session_token"].as_str().unwrap();
        let jwt = minted.json["session_jwt"].as_str().unwrap();
        assert_eq!(minted.json["organization_id"], ORGANIZATION_ID);
        let expires_at: Timestamp = minted.json["expires_at"].as_str().unwrap().parse().unwrap();
        let left = expires_at.as_second() - Timestamp::now().as_second();
        assert!((118..=120).contains(&left), "{left}");

        let state = client.admin(Method::GET, "/_fake/state", None).await;
        let text = state.json.to_string();
        assert!(!text.contains(token) && !text.contains(jwt), "{text}");
        assert!(text.contains(&redact::fingerprint(token)));
    }

    #[tokio::test]
    async fn minting_for_an_unknown_member_or_with_a_misspelt_field_is_refused() {
        let client = client();

        let unknown = mint(&client, json!({"member_id": "member-test-nobody"})).await;
        let misspelt = mint(&client, json!({"member_id": MEMBER_ADMIN, "ttl": 5})).await;

        assert_eq!(unknown.status, StatusCode::NOT_FOUND);
        assert_eq!(misspelt.status, StatusCode::BAD_REQUEST);
    }

    #[tokio::test]
    async fn revoking_a_session_twice_is_a_404_the_second_time() {
        let client = client();
        let path = format!("/_fake/sessions/{TOKEN_ADMIN}");

        let first = client.admin(Method::DELETE, &path, None).await;
        let second = client.admin(Method::DELETE, &path, None).await;

        assert_eq!(first.status, StatusCode::NO_CONTENT);
        assert_eq!(second.status, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn an_added_member_can_be_given_a_session_and_a_taken_id_is_a_conflict() {
        let client = client();
        let member = json!({"member_id": "member-test-new", "email_address": "new@acme.example",
                            "roles": ["stytch_admin"]});

        let added = client
            .admin(
                Method::POST,
                "/_fake/organizations/acme/members",
                Some(member.clone()),
            )
            .await;
        assert_eq!(added.status, StatusCode::CREATED);
        assert_eq!(added.json["organization_id"], ORGANIZATION_ID);
        let minted = mint(&client, json!({"member_id": "member-test-new"})).await;
        assert_eq!(minted.status, StatusCode::CREATED);

        let again = client
            .admin(
                Method::POST,
                "/_fake/organizations/globex/members",
                Some(member),
            )
            .await;
        assert_eq!(again.status, StatusCode::CONFLICT);
        let nowhere = client
            .admin(
                Method::POST,
                "/_fake/organizations/nowhere/members",
                Some(json!({})),
            )
            .await;
        assert_eq!(nowhere.status, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn replacing_the_roles_keeps_the_built_in_ones_and_refuses_duplicates() {
        let client = client();
        let roles = json!([{"role_id": "auditor",
                            "permissions": [{"resource_id": "stytch.sso", "actions": ["get"]}]}]);

        let replaced = client.admin(Method::PUT, "/_fake/roles", Some(roles)).await;

        assert_eq!(replaced.status, StatusCode::OK);
        let ids: Vec<&str> = replaced
            .json
            .as_array()
            .unwrap()
            .iter()
            .map(|role| role["role_id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["stytch_admin", "stytch_member", "auditor"]);
        let duplicated = json!([{"role_id": "a"}, {"role_id": "a"}]);
        let refused = client
            .admin(Method::PUT, "/_fake/roles", Some(duplicated))
            .await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST);
        let shown = client.admin(Method::GET, "/_fake/roles", None).await;
        assert_eq!(shown.json.as_array().unwrap().len(), 3);
    }
}
