//! Errors of Stytch calls, typed so the reconcile can tell a retryable failure from one that
//! only a change of spec or Secret can fix.

use std::time::Duration;

use reqwest::StatusCode;
use serde::Deserialize;

/// A Stytch call that did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum StytchError {
    /// Stytch answered with an error.
    #[error("Stytch answered {status} {error_type}: {message}")]
    Api {
        status: StatusCode,
        /// Stytch's machine-readable error, e.g. `oidc_connection_not_found`.
        error_type: String,
        message: String,
        request_id: String,
        /// From a `Retry-After` header, when the server sent one.
        retry_after: Option<Duration>,
    },

    /// No answer: connection refused or dropped, timeout, TLS failure.
    #[error("could not reach Stytch: {}", chain(.0))]
    Transport(#[source] reqwest::Error),

    /// An answer that is neither the expected body nor a known error shape.
    #[error("unexpected answer from Stytch (HTTP {status}): {reason}")]
    Unexpected { status: StatusCode, reason: String },
}

impl StytchError {
    /// Whether trying again later, unchanged, may succeed: rate limits, server errors and
    /// transport failures. Other client errors need a change of spec or Secret.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Api { status, .. } | Self::Unexpected { status, .. } => {
                *status == StatusCode::TOO_MANY_REQUESTS
                    || *status == StatusCode::REQUEST_TIMEOUT
                    || status.is_server_error()
            }
            Self::Transport(_) => true,
        }
    }

    /// Stytch's `error_type`, or a fixed word for failures that have none.
    pub fn error_type(&self) -> &str {
        match self {
            Self::Api { error_type, .. } => error_type,
            Self::Transport(error) if error.is_timeout() => "timeout",
            Self::Transport(_) => "unreachable",
            Self::Unexpected { .. } => "unexpected_response",
        }
    }

    pub fn request_id(&self) -> Option<&str> {
        match self {
            Self::Api { request_id, .. } if !request_id.is_empty() => Some(request_id),
            _ => None,
        }
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Api { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// An error and its causes, e.g. "error sending request: connection refused": reqwest's own
/// message alone does not say what went wrong. (URLs are stripped before this point.)
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Stytch's two error shapes: its own, and the OAuth2 one some endpoints use.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ErrorBody {
    Stytch {
        error_type: String,
        #[serde(default)]
        error_message: String,
        #[serde(default)]
        request_id: String,
    },
    OAuth2 {
        error: String,
        #[serde(default)]
        error_description: String,
        #[serde(default)]
        request_id: String,
    },
}

/// Builds the error for a non-success answer. The body is parsed, never echoed: only the
/// documented fields reach the error, so nothing else Stytch sent can leak into logs.
pub(crate) fn from_response(
    status: StatusCode,
    retry_after: Option<Duration>,
    body: &[u8],
) -> StytchError {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(ErrorBody::Stytch {
            error_type,
            error_message,
            request_id,
        }) => StytchError::Api {
            status,
            error_type,
            message: error_message,
            request_id,
            retry_after,
        },
        Ok(ErrorBody::OAuth2 {
            error,
            error_description,
            request_id,
        }) => StytchError::Api {
            status,
            error_type: error,
            message: error_description,
            request_id,
            retry_after,
        },
        Err(_) => StytchError::Unexpected {
            status,
            reason: "the body is not a Stytch error".into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_stytch_error_shape() {
        let body = br#"{"status_code":404,"request_id":"request-id-test-1",
            "error_type":"oidc_connection_not_found","error_message":"Not found.",
            "error_url":"https://stytch.com/docs/api/errors/404"}"#;
        let error = from_response(StatusCode::NOT_FOUND, None, body);
        assert_eq!(error.error_type(), "oidc_connection_not_found");
        assert_eq!(error.request_id(), Some("request-id-test-1"));
        assert!(!error.is_transient());
    }

    #[test]
    fn decodes_oauth2_error_shape() {
        let body = br#"{"status_code":401,"request_id":"r","error":"invalid_client",
            "error_description":"bad client","error_uri":"x"}"#;
        let error = from_response(StatusCode::UNAUTHORIZED, None, body);
        assert_eq!(error.error_type(), "invalid_client");
        assert!(error.to_string().contains("bad client"));
    }

    #[test]
    fn rate_limits_and_server_errors_are_transient() {
        let retry = Some(Duration::from_secs(3));
        let limited = from_response(StatusCode::TOO_MANY_REQUESTS, retry, b"{}");
        assert!(limited.is_transient());
        let body = br#"{"error_type":"server_unavailable","request_id":"r"}"#;
        assert!(from_response(StatusCode::SERVICE_UNAVAILABLE, None, body).is_transient());
        let body = br#"{"error_type":"invalid_sso_idp","request_id":"r"}"#;
        assert!(!from_response(StatusCode::BAD_REQUEST, None, body).is_transient());
    }

    #[test]
    fn an_unknown_body_is_never_echoed() {
        let error = from_response(
            StatusCode::BAD_GATEWAY,
            None,
            b"<html>proxy says secret</html>",
        );
        assert!(!error.to_string().contains("secret"));
        assert!(error.is_transient());
    }
}
