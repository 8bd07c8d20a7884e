//! The decisions of a reconcile, free of I/O: what to send to Stytch ([`diff`]), what status
//! to write ([`status`]), and how Stytch's errors read as conditions (here).

pub mod diff;
pub mod status;

use std::time::Duration;

use rand::Rng;

use crate::crd::OidcConnection;
use crate::stytch::StytchError;
use status::Failure;

/// Annotation that stops all Stytch calls for one object while it is `"true"`.
pub const PAUSED_ANNOTATION: &str = "sso.stytch-operator.dev/paused";

pub fn is_paused(object: &OidcConnection) -> bool {
    object
        .metadata
        .annotations
        .as_ref()
        .and_then(|annotations| annotations.get(PAUSED_ANNOTATION))
        .is_some_and(|value| value == "true")
}

/// The object's resync interval, or `default` when unset or unreadable (the schema only
/// admits values humantime can read, so the fallback is for objects stored before it).
pub fn resync_interval(object: &OidcConnection, default: Duration) -> Duration {
    object
        .spec
        .resync_interval
        .as_deref()
        .and_then(|text| humantime::parse_duration(text).ok())
        .unwrap_or(default)
}

/// `interval` shortened by up to 10 %, so objects created together drift apart instead of
/// polling Stytch in lock-step.
pub fn jittered(interval: Duration) -> Duration {
    interval.mul_f64(1.0 - rand::rng().random_range(0.0..0.1))
}

/// Condition reason for a Stytch error: its `error_type` in CamelCase
/// (`oidc_connection_not_found` -> `OidcConnectionNotFound`).
pub fn reason_for(error: &StytchError) -> String {
    match error.error_type() {
        "too_many_requests" => return "RateLimited".to_owned(),
        "timeout" => return "StytchTimeout".to_owned(),
        "unreachable" => return "StytchUnreachable".to_owned(),
        _ => {}
    }
    let reason: String = error
        .error_type()
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(|word| {
            let mut chars = word.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase())
                .into_iter()
                .chain(chars)
                .collect::<String>()
        })
        .collect();
    if reason.starts_with(|c: char| c.is_ascii_alphabetic()) {
        reason
    } else {
        "StytchError".to_owned()
    }
}

/// The condition for a failed Stytch call, saying whether the operator will retry by itself.
pub fn failure_for(action: &str, error: &StytchError) -> Failure {
    let next_step = if error.is_transient() {
        "The operator retries with backoff."
    } else {
        "Fix the spec, the referenced Secrets or the connection in Stytch; the operator tries \
         again when one of them changes."
    };
    let message = format!("Could not {action}: {error}. {next_step}");
    Failure {
        request_id: error.request_id().map(str::to_owned),
        ..Failure::new(reason_for(error), message)
    }
}

#[cfg(test)]
mod tests {
    use reqwest::StatusCode;

    use super::*;

    fn api_error(status: StatusCode, error_type: &str) -> StytchError {
        StytchError::Api {
            status,
            error_type: error_type.into(),
            message: "message".into(),
            request_id: "request-id-test-1".into(),
            retry_after: None,
        }
    }

    #[test]
    fn reasons_are_stytch_error_types_in_camel_case() {
        let error = api_error(StatusCode::NOT_FOUND, "oidc_connection_not_found");
        assert_eq!(reason_for(&error), "OidcConnectionNotFound");
        let error = api_error(StatusCode::TOO_MANY_REQUESTS, "too_many_requests");
        assert_eq!(reason_for(&error), "RateLimited");
    }

    #[test]
    fn stable_failures_say_what_to_fix_and_transient_ones_that_they_are_retried() {
        let stable = failure_for(
            "update",
            &api_error(StatusCode::BAD_REQUEST, "invalid_sso_idp"),
        );
        assert!(
            stable.message.contains("Fix the spec"),
            "{}",
            stable.message
        );
        // Each call has a new request id: in the message it would rewrite the status each time.
        assert!(!stable.message.contains("request-id-test-1"));
        assert_eq!(stable.request_id.as_deref(), Some("request-id-test-1"));
        let transient = failure_for("update", &api_error(StatusCode::SERVICE_UNAVAILABLE, "x"));
        assert!(transient.message.contains("retries with backoff"));
    }

    #[test]
    fn jitter_only_shortens_and_by_at_most_ten_percent() {
        let interval = Duration::from_secs(600);
        for _ in 0..1000 {
            let delay = jittered(interval);
            assert!(
                delay <= interval && delay >= Duration::from_secs(540),
                "{delay:?}"
            );
        }
    }

    #[test]
    fn the_paused_annotation_must_say_true() {
        let mut object = OidcConnection::new("a", Default::default());
        assert!(!is_paused(&object));
        object.metadata.annotations =
            Some([(PAUSED_ANNOTATION.to_owned(), "true".to_owned())].into());
        assert!(is_paused(&object));
        object.metadata.annotations =
            Some([(PAUSED_ANNOTATION.to_owned(), "false".to_owned())].into());
        assert!(!is_paused(&object));
    }
}
