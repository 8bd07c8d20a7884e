//! What a Stytch handler produces, and how it becomes an HTTP answer.
//!
//! Handlers return a [`Reply`] without a request id; the per-call pipeline stamps `request_id`
//! and `status_code` into the body, records the call, and only then turns the reply into
//! HTTP. That keeps the error shape and the call log in one place for every route, fallbacks
//! included.

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header::RETRY_AFTER},
    response::{IntoResponse, Response},
};
use serde_json::{Map, Value, json};

use crate::{
    faults::{self, StatusAction},
    serve::DropConnection,
    unconfirmed,
};

/// An error in Stytch's shape: `{status_code, request_id, error_type, error_message,
/// error_url}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StytchError {
    pub status: StatusCode,
    pub error_type: String,
    pub message: String,
    /// Sent as `Retry-After` when set; Stytch itself documents no such header.
    pub retry_after_secs: Option<u64>,
}

/// Why a call did not succeed: an error answer, or no answer at all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    Error(StytchError),
    /// Hold the call without answering, as a server that stopped responding would.
    Hang,
    /// Close the connection without answering.
    Drop,
}

/// What a handler hands to the pipeline.
#[derive(Clone, Debug, PartialEq)]
pub enum Reply {
    /// A 200 answer; the pipeline adds `request_id` and `status_code`.
    Success(Map<String, Value>),
    Error(StytchError),
    Hang,
    Drop,
}

impl StytchError {
    pub fn new(
        status: StatusCode,
        error_type: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            status,
            error_type: error_type.into(),
            message: message.into(),
            retry_after_secs: None,
        }
    }

    pub fn unauthorized_credentials() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized_credentials",
            "Unauthorized credentials.",
        )
    }

    /// The answer of the rate limiter, which sends no `Retry-After`.
    pub fn too_many_requests() -> Self {
        let (error_type, message) = faults::known_status_error(429).unwrap_or_default();
        Self::new(StatusCode::TOO_MANY_REQUESTS, error_type, message)
    }

    /// The answer a status fault rule asks for.
    pub fn from_fault(action: &StatusAction) -> Self {
        let status =
            StatusCode::from_u16(action.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let (known_type, known_message) =
            faults::known_status_error(action.status).unwrap_or(("fault", "Injected fault."));
        Self {
            status,
            error_type: action
                .error_type
                .clone()
                .unwrap_or_else(|| known_type.to_owned()),
            message: action
                .error_message
                .clone()
                .unwrap_or_else(|| known_message.to_owned()),
            retry_after_secs: action.retry_after_secs,
        }
    }
}

impl From<StytchError> for Failure {
    fn from(error: StytchError) -> Self {
        Self::Error(error)
    }
}

impl From<Result<Map<String, Value>, Failure>> for Reply {
    fn from(result: Result<Map<String, Value>, Failure>) -> Self {
        match result {
            Ok(body) => Self::Success(body),
            Err(Failure::Error(error)) => Self::Error(error),
            Err(Failure::Hang) => Self::Hang,
            Err(Failure::Drop) => Self::Drop,
        }
    }
}

/// Carries the reply to the pipeline inside an otherwise empty response.
impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let mut response = StatusCode::OK.into_response();
        response.extensions_mut().insert(self);
        response
    }
}

impl Reply {
    /// The status the call log shows: 0 when nothing was answered.
    pub fn logged_status(&self) -> u16 {
        match self {
            Self::Success(_) => StatusCode::OK.as_u16(),
            Self::Error(error) => error.status.as_u16(),
            Self::Hang | Self::Drop => 0,
        }
    }

    pub fn error_type(&self) -> Option<&str> {
        match self {
            Self::Error(error) => Some(&error.error_type),
            _ => None,
        }
    }

    /// The HTTP answer. A hang resolves only after [`faults::HANG_CAP`], by dropping the
    /// connection; a client normally gives up long before.
    pub async fn into_http(self, request_id: &str) -> Response {
        match self {
            Self::Success(mut body) => {
                body.insert("request_id".into(), request_id.into());
                body.insert("status_code".into(), StatusCode::OK.as_u16().into());
                Json(body).into_response()
            }
            Self::Error(error) => error_response(&error, request_id),
            Self::Hang => {
                tokio::time::sleep(faults::HANG_CAP).await;
                dropped()
            }
            Self::Drop => dropped(),
        }
    }
}

fn error_response(error: &StytchError, request_id: &str) -> Response {
    let body = json!({
        "status_code": error.status.as_u16(),
        "request_id": request_id,
        "error_type": error.error_type,
        "error_message": error.message,
        "error_url": unconfirmed::error_url(error.status, &error.error_type),
    });
    let mut response = (error.status, Json(body)).into_response();
    if let Some(seconds) = error.retry_after_secs {
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

fn dropped() -> Response {
    let mut response = StatusCode::INTERNAL_SERVER_ERROR.into_response();
    response.extensions_mut().insert(DropConnection);
    response
}
