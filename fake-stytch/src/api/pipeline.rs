//! What happens to every request to the Stytch API around its handler: a request id, the caller
//! and the body read once, the configured latency, the call log entry and the final HTTP answer.
//!
//! The body is parsed here, before the handler, because the call log needs it even when the
//! handler rejects the call; a malformed body is only reported by handlers that read bodies
//! (create, update and session authenticate), after authentication, so GET and DELETE tolerate
//! whatever SDKs send.

use std::sync::Arc;

use axum::{
    body::Body,
    extract::{Request, State},
    http::{HeaderMap, StatusCode, header},
    middleware::Next,
    response::Response,
};
use base64::{Engine, prelude::BASE64_STANDARD};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::{
    api::{Caller, Reply, StytchError},
    app::App,
    calllog::Call,
    ids, redact, unconfirmed,
};

/// The Basic-auth credentials a caller presented.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub project_id: String,
    pub secret: String,
}

/// A request body, read and parsed once.
#[derive(Clone, Debug)]
pub struct RequestBody {
    /// `None` when the body was empty or not JSON.
    json: Option<Value>,
    /// Why a body-reading handler must refuse this body.
    problem: Option<StytchError>,
    length: usize,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("project_id", &self.project_id)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// The credentials of an `Authorization: Basic` header, if it has readable ones.
    pub fn from_headers(headers: &HeaderMap) -> Option<Self> {
        let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
        let (scheme, encoded) = value.trim().split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return None;
        }

        let decoded = BASE64_STANDARD.decode(encoded.trim()).ok()?;
        let decoded = String::from_utf8(decoded).ok()?;
        let (project_id, secret) = decoded.split_once(':')?;
        Some(Self {
            project_id: project_id.to_owned(),
            secret: secret.to_owned(),
        })
    }
}

impl RequestBody {
    pub async fn read(headers: &HeaderMap, body: Body) -> Self {
        let Ok(bytes) = axum::body::to_bytes(body, unconfirmed::MAX_BODY_BYTES).await else {
            let problem = unconfirmed::bad_request("the body is too large or could not be read");
            return Self {
                json: None,
                problem: Some(problem),
                length: 0,
            };
        };
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Self {
                json: None,
                problem: None,
                length: bytes.len(),
            };
        }

        let json = serde_json::from_slice::<Value>(&bytes).ok();
        let problem = if !is_exactly_json(headers) {
            Some(unconfirmed::invalid_content_type())
        } else if json.is_none() {
            Some(unconfirmed::bad_request("the body is not JSON"))
        } else {
            None
        };
        Self {
            json,
            problem,
            length: bytes.len(),
        }
    }

    /// The body as the call log shows it: secrets redacted, and a body that is not JSON
    /// described rather than stored, since it could hold anything.
    pub fn for_log(&self) -> Value {
        match &self.json {
            Some(json) => {
                let mut json = json.clone();
                redact::redact_secrets(&mut json);
                json
            }
            None if self.length == 0 => Value::Null,
            None => Value::String(format!("<{} bytes that are not JSON>", self.length)),
        }
    }

    /// The body as `T`; an empty body reads as `{}`.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, StytchError> {
        if let Some(problem) = &self.problem {
            return Err(problem.clone());
        }

        let json = match &self.json {
            None => Value::Object(serde_json::Map::new()),
            Some(json @ Value::Object(_)) => json.clone(),
            Some(_) => return Err(unconfirmed::bad_request("the body must be a JSON object")),
        };
        serde_json::from_value(json).map_err(|error| unconfirmed::bad_request(&error.to_string()))
    }
}

fn is_exactly_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.trim().eq_ignore_ascii_case("application/json"))
}

/// The middleware every Stytch API request goes through.
pub async fn stytch_call(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let arrived = jiff::Timestamp::now();
    let request_id = ids::request_id();
    let (mut parts, body) = request.into_parts();
    let caller = Caller::from_headers(&parts.headers);
    let body = RequestBody::read(&parts.headers, body).await;

    let call = Call {
        time: arrived.to_string(),
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        project_id: caller
            .credentials
            .as_ref()
            .map(|credentials| credentials.project_id.clone()),
        body: body.for_log(),
        member_session: caller.member_session.kind(),
        member_session_fingerprint: caller.member_session.fingerprint(),
        status: 0,
        request_id: request_id.clone(),
        error_type: None,
    };
    parts.extensions.insert(caller);
    parts.extensions.insert(body);

    let latency = app.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }

    let response = next.run(Request::from_parts(parts, Body::empty())).await;
    let reply = reply_of(&response);
    record(&app, call, &reply);
    reply.into_http(&request_id).await
}

/// The handler's reply; a response axum made itself (an unreadable path) becomes a Stytch
/// error so every answer has Stytch's shape.
fn reply_of(response: &Response) -> Reply {
    if let Some(reply) = response.extensions().get::<Reply>() {
        return reply.clone();
    }

    let error = if response.status().is_client_error() {
        unconfirmed::bad_request("the request could not be read")
    } else {
        StytchError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_server_error",
            "The fake could not handle this request.",
        )
    };
    Reply::Error(error)
}

fn record(app: &App, mut call: Call, reply: &Reply) {
    call.status = reply.logged_status();
    call.error_type = reply.error_type().map(str::to_owned);

    tracing::info!(
        method = %call.method,
        path = %call.path,
        status = call.status,
        request_id = %call.request_id,
        project_id = call.project_id.as_deref(),
        member_session = call.member_session,
        error_type = call.error_type.as_deref(),
        "stytch api call"
    );
    app.calls.append(call);
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(name, value)| (name.clone(), HeaderValue::from_str(value).unwrap()))
            .collect()
    }

    #[test]
    fn basic_credentials_are_read_and_other_schemes_ignored() {
        let encoded = BASE64_STANDARD.encode("project-test-1:se:cret");
        let basic = headers(&[(header::AUTHORIZATION, &format!("Basic {encoded}"))]);
        let credentials = Credentials::from_headers(&basic).unwrap();
        assert_eq!(credentials.project_id, "project-test-1");
        assert_eq!(credentials.secret, "se:cret");
        assert!(!format!("{credentials:?}").contains("se:cret"));

        let bearer = headers(&[(header::AUTHORIZATION, "Bearer abc")]);
        assert!(Credentials::from_headers(&bearer).is_none());
    }

    #[tokio::test]
    async fn a_json_body_with_a_charset_is_refused_but_still_logged() {
        let charset = headers(&[(header::CONTENT_TYPE, "application/json; charset=utf-8")]);
        let body = RequestBody::read(&charset, Body::from(r#"{"client_secret":"x"}"#)).await;

        let refused = body.parse::<Value>().unwrap_err();
        assert_eq!(refused.error_type, "invalid_content_type");
        assert_eq!(body.for_log()["client_secret"], redact::fingerprint("x"));
    }

    #[tokio::test]
    async fn an_empty_body_reads_as_an_empty_object() {
        let body = RequestBody::read(&HeaderMap::new(), Body::empty()).await;
        assert_eq!(body.parse::<Value>().unwrap(), serde_json::json!({}));
        assert_eq!(body.for_log(), Value::Null);
    }

    #[tokio::test]
    async fn a_body_that_is_not_json_is_described_in_the_log_not_stored() {
        let json = headers(&[(header::CONTENT_TYPE, "application/json")]);
        let body = RequestBody::read(&json, Body::from("client_secret=hunter2")).await;

        assert_eq!(body.parse::<Value>().unwrap_err().error_type, "bad_request");
        assert_eq!(body.for_log(), "<21 bytes that are not JSON>");
    }
}
