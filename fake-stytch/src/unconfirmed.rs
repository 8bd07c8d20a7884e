//! Every behaviour of the fake that Stytch's public material does not pin down.
//!
//! Stytch documents the names of these errors and the shape of these calls but not every detail.
//! Each item here is the fake's choice, kept in this one module so that a choice found to be
//! wrong against the real API is changed in one place. The operator must not depend on any of
//! them beyond what `stytch-api.md` guarantees.
//!
//! Choices that are behaviour rather than a value are documented here and implemented where they
//! happen:
//! - A failed issuer discovery leaves the four URLs as they were before the update (only the
//!   fields the request set explicitly change), see `api::update_connection`.
//! - Unknown connections are `oidc_connection_not_found` on every call, delete included, although
//!   the real delete endpoint serves SAML connections too and might say
//!   `sso_connection_not_found`.
//! - RBAC runs after the rate limit and before the fault rules, so a refused call still counts
//!   against the rate limit, and never uses up a fault rule; see `api::admit`.
//! - A member session from one organization on a path naming another organization, or naming
//!   no organization that exists, is a tenancy error (not `organization_not_found`), checked
//!   before the member's permissions; see `rbac::authorize`.
//! - An empty member-session header names no session (404 `session_not_found`); an empty
//!   `session_token` or `session_jwt` in an authenticate body counts as absent.
//! - Session authenticate does not extend the session (`session_duration_minutes` is ignored).
//! - `client_secret` is returned in clear in API responses, as in Stytch's public examples.
//! - The organization reference in a path is matched as an id first, then as a slug, then as an
//!   external id.

use axum::http::StatusCode;

use crate::api::StytchError;

/// Longest `client_secret` accepted by an update, in bytes.
pub const CLIENT_SECRET_MAX_BYTES: usize = 4096;

/// Largest request body the Stytch API reads, in bytes.
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// `identity_provider` of a connection created without one.
pub const CREATE_DEFAULT_IDENTITY_PROVIDER: &str = "generic";

/// HTTP status of the not-found errors.
const NOT_FOUND: StatusCode = StatusCode::NOT_FOUND;

/// HTTP status of the validation errors.
const INVALID: StatusCode = StatusCode::BAD_REQUEST;

/// Applies one string field of an update: absent or `null` (`None`) leaves it unchanged, which
/// Stytch documents; `""` clears it, which is the unconfirmed part.
pub fn apply_string_change(field: &mut String, change: Option<&str>) {
    if let Some(value) = change {
        value.clone_into(field);
    }
}

/// The issuer from which `/.well-known/openid-configuration` is appended: one trailing `/` is
/// stripped so that `https://idp/` and `https://idp` fetch the same document.
pub fn discovery_base(issuer: &str) -> &str {
    issuer.strip_suffix('/').unwrap_or(issuer)
}

/// The `warning` of an update whose issuer discovery failed. Stytch documents that a warning is
/// returned, not its words.
pub fn discovery_warning(url: &str, reason: &str) -> String {
    format!("could not fetch the OpenID configuration from {url}: {reason}")
}

/// The callback URL an identity provider's administrator registers for a connection.
pub fn redirect_url(api_url: &str, connection_id: &str) -> String {
    format!("{api_url}/v1/b2b/sso/callback/{connection_id}")
}

/// The `error_url` of every error body. Clients are told not to parse it.
pub fn error_url(status: StatusCode, error_type: &str) -> String {
    format!(
        "https://stytch.com/docs/api-errors/{}#{error_type}",
        status.as_u16()
    )
}

pub fn organization_not_found(reference: &str) -> StytchError {
    StytchError::new(
        NOT_FOUND,
        "organization_not_found",
        format!("Organization {reference} could not be found."),
    )
}

pub fn connection_not_found(connection_id: &str) -> StytchError {
    StytchError::new(
        NOT_FOUND,
        "oidc_connection_not_found",
        format!("OIDC connection {connection_id} could not be found."),
    )
}

/// `field` is the connection field without `_url`: `issuer`, `authorization`, `token`,
/// `userinfo` or `jwks`.
pub fn invalid_url(field: &str) -> StytchError {
    StytchError::new(
        INVALID,
        format!("oidc_connection_{field}_url_invalid_format"),
        format!("The {field} URL must be an https:// URL."),
    )
}

pub fn invalid_identity_provider(value: &str) -> StytchError {
    StytchError::new(
        INVALID,
        "invalid_sso_idp",
        format!("{value:?} is not a supported identity_provider."),
    )
}

pub fn client_secret_too_long() -> StytchError {
    StytchError::new(
        INVALID,
        "client_secret_too_long",
        format!("client_secret must be at most {CLIENT_SECRET_MAX_BYTES} bytes."),
    )
}

/// A request body sent with a `Content-Type` other than exactly `application/json`. Older API
/// versions rejected a `charset` parameter; the fake keeps rejecting it so clients that send one
/// are caught in tests.
pub fn invalid_content_type() -> StytchError {
    StytchError::new(
        INVALID,
        "invalid_content_type",
        "Request bodies must be sent with Content-Type: application/json.",
    )
}

/// A request body that is not JSON, not an object, too large, or has a field of the wrong type.
pub fn bad_request(reason: &str) -> StytchError {
    StytchError::new(
        INVALID,
        "bad_request",
        format!("The request is not valid: {reason}."),
    )
}

pub fn route_not_found() -> StytchError {
    StytchError::new(NOT_FOUND, "route_not_found", "No such API route.")
}

pub fn method_not_allowed() -> StytchError {
    StytchError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "This API route does not accept this HTTP method.",
    )
}

/// HTTP status of a session that is unknown, revoked or expired.
const SESSION_NOT_FOUND: StatusCode = StatusCode::NOT_FOUND;

/// A member session that is unknown, revoked or expired, whether it came in a member-session
/// header or in a session authenticate body. Stytch names the error; its use for RBAC headers
/// is the fake's choice.
pub fn session_not_found() -> StytchError {
    StytchError::new(
        SESSION_NOT_FOUND,
        "session_not_found",
        "Session could not be found.",
    )
}

/// Both member-session headers at once, or both `session_token` and `session_jwt` in a session
/// authenticate body. Stytch documents that authenticate refuses both; the type and status are
/// the fake's choice.
pub fn too_many_session_arguments() -> StytchError {
    StytchError::new(
        INVALID,
        "too_many_session_arguments",
        "Send a session token or a session JWT, not both.",
    )
}

/// A session authenticate body with neither `session_token` nor `session_jwt`.
pub fn missing_session_argument() -> StytchError {
    StytchError::new(
        INVALID,
        "invalid_argument",
        "Either session_token or session_jwt is required.",
    )
}

/// A member session used on another organization than its member's. Stytch may answer
/// `session_authorization_error` here instead; the fake uses the tenancy error.
pub fn session_authorization_tenancy_error(
    member_organization_id: &str,
    requested: &str,
) -> StytchError {
    StytchError::new(
        StatusCode::FORBIDDEN,
        "session_authorization_tenancy_error",
        format!(
            "The member belongs to organization {member_organization_id}, \
             not to organization {requested}."
        ),
    )
}

/// A member whose roles do not grant `action` on `resource`. The type and status are Stytch's;
/// the message is the fake's, naming the action and the resource.
pub fn session_authorization_error(action: &str, resource: &str) -> StytchError {
    StytchError::new(
        StatusCode::FORBIDDEN,
        "session_authorization_error",
        format!("Member is not authorized to perform {action} on {resource}."),
    )
}
