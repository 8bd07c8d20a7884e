//! HTTP client for the parts of Stytch's B2B SSO API the operator uses.
//!
//! # Guarantees
//! - Secrets (the project secret, the client secret) live in [`SecretString`] values whose
//!   `Debug` is redacted; request and response bodies are never logged or put in errors.
//! - Every call has a timeout a little above Stytch's own 30 s server-side cap, so a hung
//!   connection becomes a transient error instead of a stuck reconcile.
//!
//! # Assumptions
//! Stytch has no idempotency keys; an update is safe to repeat because it sets absolute values.

mod error;
mod model;

use model::AuthenticateSessionRequest;

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::metrics::Metrics;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::{StatusCode, header};
use secrecy::ExposeSecret;
use serde::de::DeserializeOwned;

pub use error::StytchError;
pub use model::{
    AuthenticateSessionResponse, DeleteConnectionResponse, ListConnectionsResponse, MemberSession,
    MemberSessionKind, OidcConnection, ProjectCredentials, UpdateOidcConnectionRequest,
    UpdateOidcConnectionResponse,
};

/// Stytch caps request time at about 30 s; waiting slightly longer lets its own timeout
/// error arrive instead of cutting the connection first.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(35);

const LIVE_URL: &str = "https://api.stytch.com";
const TEST_URL: &str = "https://test.stytch.com";

/// Characters left unescaped in a path segment (RFC 3986 unreserved).
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The base URL Stytch's official SDKs pick for a project: live for `project-live-` ids,
/// test for every other id.
pub fn base_url_for_project(project_id: &str) -> &'static str {
    if project_id.starts_with("project-live-") {
        LIVE_URL
    } else {
        TEST_URL
    }
}

/// Outbound rate limit: a token bucket per Stytch project.
#[derive(Clone, Copy, Debug)]
pub struct RateLimit {
    pub requests_per_second: NonZeroU32,
    pub burst: NonZeroU32,
}

impl Default for RateLimit {
    fn default() -> Self {
        Self {
            requests_per_second: NonZeroU32::new(10).unwrap(),
            burst: NonZeroU32::new(20).unwrap(),
        }
    }
}

/// A Stytch API client; cheap to clone, shares one connection pool and one rate limiter.
#[derive(Clone)]
pub struct StytchClient {
    http: reqwest::Client,
    /// Overrides the per-project choice of live or test (fakes, proxies, private endpoints).
    base_url_override: Option<String>,
    /// Keyed by project id: Stytch's limits are per project.
    limiter: Arc<DefaultKeyedRateLimiter<String>>,
    metrics: Option<Arc<Metrics>>,
}

impl std::fmt::Debug for StytchClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StytchClient")
            .field("base_url_override", &self.base_url_override)
            .finish()
    }
}

impl StytchClient {
    pub fn new(base_url_override: Option<String>) -> Result<Self, StytchError> {
        Self::with_rate_limit(base_url_override, RateLimit::default())
    }

    pub fn with_rate_limit(
        base_url_override: Option<String>,
        rate_limit: RateLimit,
    ) -> Result<Self, StytchError> {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("stytch-sso-operator/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(StytchError::Transport)?;
        let base_url_override = base_url_override.map(|url| url.trim_end_matches('/').to_owned());
        let quota = Quota::per_second(rate_limit.requests_per_second).allow_burst(rate_limit.burst);
        let limiter = Arc::new(RateLimiter::keyed(quota));
        Ok(Self {
            http,
            base_url_override,
            limiter,
            metrics: None,
        })
    }

    /// Counts every call, and every wait for the rate limit, in `metrics`.
    pub fn with_metrics(self, metrics: Arc<Metrics>) -> Self {
        Self {
            metrics: Some(metrics),
            ..self
        }
    }

    fn url(&self, credentials: &ProjectCredentials, segments: &[&str]) -> String {
        let base = match &self.base_url_override {
            Some(url) => url.as_str(),
            None => base_url_for_project(&credentials.project_id),
        };
        let mut url = base.to_owned();
        for segment in segments {
            url.push('/');
            url.extend(utf8_percent_encode(segment, PATH_SEGMENT));
        }
        url
    }

    /// Lists the organization's SSO connections; there is no call that reads just one.
    pub async fn list_connections(
        &self,
        caller: &Caller<'_>,
        organization_id: &str,
    ) -> Result<ListConnectionsResponse, StytchError> {
        let url = self.url(caller.credentials, &["v1", "b2b", "sso", organization_id]);
        self.send("list", caller, self.http.get(url)).await
    }

    /// Sets the fields present in `request`; absent fields stay as they are in Stytch.
    pub async fn update_oidc_connection(
        &self,
        caller: &Caller<'_>,
        organization_id: &str,
        connection_id: &str,
        request: &UpdateOidcConnectionRequest,
    ) -> Result<UpdateOidcConnectionResponse, StytchError> {
        let path = [
            "v1",
            "b2b",
            "sso",
            "oidc",
            organization_id,
            "connections",
            connection_id,
        ];
        let builder = self.http.put(self.url(caller.credentials, &path));
        self.send("update", caller, json_body(builder, request)?)
            .await
    }

    /// Deletes the connection. Stytch answers 404 for a connection that is already gone;
    /// the caller decides whether that counts as done.
    pub async fn delete_connection(
        &self,
        caller: &Caller<'_>,
        organization_id: &str,
        connection_id: &str,
    ) -> Result<DeleteConnectionResponse, StytchError> {
        let path = [
            "v1",
            "b2b",
            "sso",
            organization_id,
            "connections",
            connection_id,
        ];
        let builder = self.http.delete(self.url(caller.credentials, &path));
        self.send("delete", caller, builder).await
    }

    /// Authenticates a member session, which tells its member's organization.
    pub async fn authenticate_session(
        &self,
        credentials: &ProjectCredentials,
        session: &MemberSession,
    ) -> Result<AuthenticateSessionResponse, StytchError> {
        let url = self.url(credentials, &["v1", "b2b", "sessions", "authenticate"]);
        let body = AuthenticateSessionRequest::for_session(session);
        let caller = Caller {
            credentials,
            member_session: None,
        };
        self.send(
            "authenticate",
            &caller,
            json_body(self.http.post(url), &body)?,
        )
        .await
    }

    async fn send<T: DeserializeOwned>(
        &self,
        operation: &'static str,
        caller: &Caller<'_>,
        builder: reqwest::RequestBuilder,
    ) -> Result<T, StytchError> {
        let credentials = caller.credentials;
        let builder = match caller.member_session {
            Some(session) => builder.header(session.header_name(), session.value.expose_secret()),
            None => builder,
        };
        if self.limiter.check_key(&credentials.project_id).is_err() {
            tracing::debug!(
                project_id = credentials.project_id,
                "waiting for the rate limit"
            );
            if let Some(metrics) = &self.metrics {
                metrics.rate_limited.inc();
            }
            self.limiter.until_key_ready(&credentials.project_id).await;
        }
        let sent = builder
            .basic_auth(
                &credentials.project_id,
                Some(credentials.secret.expose_secret()),
            )
            .send()
            .await;
        if let Some(metrics) = &self.metrics {
            let status_code = sent
                .as_ref()
                .ok()
                .map(|response| response.status().as_u16());
            metrics.record_stytch_request(operation, status_code);
        }
        let response = sent.map_err(|e| StytchError::Transport(e.without_url()))?;
        let status = response.status();
        let retry_after = retry_after(response.headers());
        let body = response
            .bytes()
            .await
            .map_err(|e| StytchError::Transport(e.without_url()))?;
        if !status.is_success() {
            return Err(error::from_response(status, retry_after, &body));
        }
        serde_json::from_slice(&body).map_err(|e| StytchError::Unexpected {
            status,
            // serde's message names the field and position, never the value.
            reason: format!("the body does not match Stytch's documented shape: {e}"),
        })
    }
}

/// Who makes a call: a project, and optionally a member of one of its organizations, whose
/// roles and organization Stytch then enforces.
#[derive(Clone, Copy, Debug)]
pub struct Caller<'a> {
    pub credentials: &'a ProjectCredentials,
    pub member_session: Option<&'a MemberSession>,
}

/// Encodes `body` as JSON. The Content-Type is set by hand: Stytch rejected a charset
/// parameter in the past.
fn json_body<B: serde::Serialize>(
    builder: reqwest::RequestBuilder,
    body: &B,
) -> Result<reqwest::RequestBuilder, StytchError> {
    let body = serde_json::to_vec(body).map_err(|e| StytchError::Unexpected {
        status: StatusCode::OK,
        reason: format!("could not encode the request: {e}"),
    })?;
    Ok(builder
        .header(header::CONTENT_TYPE, "application/json")
        .body(body))
}

/// `Retry-After` in seconds; the HTTP-date form is not used by Stytch and is ignored.
fn retry_after(headers: &header::HeaderMap) -> Option<Duration> {
    let value = headers.get(header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credentials(project_id: &str) -> ProjectCredentials {
        ProjectCredentials {
            project_id: project_id.into(),
            secret: "secret".into(),
        }
    }

    #[test]
    fn live_projects_use_the_live_api_and_all_others_the_test_api() {
        assert_eq!(
            base_url_for_project("project-live-123"),
            "https://api.stytch.com"
        );
        assert_eq!(
            base_url_for_project("project-test-123"),
            "https://test.stytch.com"
        );
        assert_eq!(base_url_for_project("anything"), "https://test.stytch.com");
    }

    #[test]
    fn an_explicit_base_url_wins_over_the_project_id() {
        let client = StytchClient::new(Some("http://127.0.0.1:9/".into())).unwrap();
        let url = client.url(&credentials("project-live-1"), &["v1", "b2b", "sso", "org"]);
        assert_eq!(url, "http://127.0.0.1:9/v1/b2b/sso/org");
    }

    #[test]
    fn path_segments_are_percent_encoded() {
        let client = StytchClient::new(None).unwrap();
        let url = client.url(&credentials("project-test-1"), &["v1", "a b/c?d"]);
        assert_eq!(url, "https://test.stytch.com/v1/a%20b%2Fc%3Fd");
    }

    #[tokio::test]
    async fn calls_beyond_the_burst_wait_for_the_rate_limit() {
        let rate_limit = RateLimit {
            requests_per_second: NonZeroU32::new(5).unwrap(),
            burst: NonZeroU32::new(2).unwrap(),
        };
        let client = StytchClient::with_rate_limit(None, rate_limit).unwrap();
        let key = "project-test-1".to_owned();
        assert!(client.limiter.check_key(&key).is_ok());
        assert!(client.limiter.check_key(&key).is_ok());
        assert!(
            client.limiter.check_key(&key).is_err(),
            "the burst of 2 is used up"
        );
        assert!(
            client
                .limiter
                .check_key(&"project-test-2".to_owned())
                .is_ok(),
            "per project"
        );
    }

    #[test]
    fn retry_after_is_read_in_seconds() {
        let mut headers = header::HeaderMap::new();
        headers.insert(header::RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        headers.insert(
            header::RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&headers), None);
    }
}
