//! Fixtures for the tests: a seeded fake and a client that calls its router in process.

use std::{sync::Arc, time::Duration};

use axum::{
    Router,
    body::Body,
    http::{HeaderMap, Method, Request, StatusCode, header},
};
use base64::{Engine, prelude::BASE64_STANDARD};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::{
    app::App,
    discovery::Discovery,
    issuer::IssuerTls,
    seed::{self, Seed},
    server,
    state::Store,
};

pub const PROJECT_ID: &str = "project-test-11111111-1111-1111-1111-111111111111";
pub const SECRET: &str = "secret-test-project";
pub const ORGANIZATION_ID: &str = "organization-test-acme";
pub const CONNECTION_ID: &str = "oidc-connection-test-acme";
pub const API_URL: &str = "http://fake-stytch.test";

/// One organization (`acme`, external id `acme-ext`) with one empty connection, and one project.
pub fn seed() -> Value {
    json!({
        "projects": [{"project_id": PROJECT_ID, "secret": SECRET}],
        "organizations": [{
            "organization_id": ORGANIZATION_ID,
            "slug": "acme",
            "external_id": "acme-ext",
            "connections": [{
                "connection_id": CONNECTION_ID,
                "display_name": "Acme",
                "identity_provider": "generic",
            }],
        }],
    })
}

pub const MEMBER_ADMIN: &str = "member-test-ada";
pub const MEMBER_VIEWER: &str = "member-test-vic";
pub const MEMBER_GLOBEX: &str = "member-test-gus";
pub const TOKEN_ADMIN: &str = "session-token-test-ada";
pub const JWT_ADMIN: &str = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZGEifQ.c2lnbmF0dXJl";
pub const TOKEN_VIEWER: &str = "session-token-test-vic";
pub const TOKEN_EXPIRED: &str = "session-token-test-ada-expired";
pub const TOKEN_GLOBEX: &str = "session-token-test-gus";

/// [`seed`] plus RBAC: a role `sso_viewer` (`get` on `stytch.sso`); in `acme` an admin
/// ([`MEMBER_ADMIN`]) and a viewer ([`MEMBER_VIEWER`]); an organization `globex` with an admin
/// ([`MEMBER_GLOBEX`]); a live session for each, and an expired one for the acme admin.
pub fn rbac_seed() -> Value {
    let mut seeded = seed();
    seeded["roles"] = json!([{
        "role_id": "sso_viewer",
        "permissions": [{"resource_id": "stytch.sso", "actions": ["get"]}],
    }]);
    seeded["organizations"][0]["name"] = json!("Acme Inc");
    seeded["organizations"][0]["members"] = json!([
        {"member_id": MEMBER_ADMIN, "email_address": "ada@acme.example", "roles": ["stytch_admin"]},
        {"member_id": MEMBER_VIEWER, "email_address": "vic@acme.example", "roles": ["sso_viewer"]},
    ]);
    seeded["organizations"].as_array_mut().unwrap().push(json!({
        "organization_id": "organization-test-globex",
        "slug": "globex",
        "members": [{"member_id": MEMBER_GLOBEX, "roles": ["stytch_admin"]}],
    }));
    seeded["sessions"] = json!([
        {"session_token": TOKEN_ADMIN, "session_jwt": JWT_ADMIN, "member_id": MEMBER_ADMIN},
        {"session_token": TOKEN_VIEWER, "session_jwt": "jwt-test-vic", "member_id": MEMBER_VIEWER},
        {"session_token": TOKEN_EXPIRED, "session_jwt": "jwt-test-ada-expired",
         "member_id": MEMBER_ADMIN, "expires_at": "2020-01-01T00:00:00Z"},
        {"session_token": TOKEN_GLOBEX, "session_jwt": "jwt-test-gus", "member_id": MEMBER_GLOBEX},
    ]);
    seeded
}

pub fn app(seed_json: Value) -> Arc<App> {
    let seed: Seed = serde_json::from_value(seed_json).unwrap();
    let store = seed::build_store(seed, &Store::default(), API_URL).unwrap();
    let tls = IssuerTls::generate().unwrap();
    let discovery = Discovery::new(&tls.certificate_der).unwrap();
    Arc::new(App::new(
        API_URL.into(),
        discovery,
        store,
        Duration::ZERO,
        1000,
    ))
}

/// Calls the fake's router in process, as the project unless told otherwise.
pub struct Client {
    pub app: Arc<App>,
    router: Router,
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub json: Value,
}

impl Client {
    pub fn new(app: Arc<App>) -> Self {
        let router = server::router(app.clone());
        Self { app, router }
    }

    pub fn seeded() -> Self {
        Self::new(app(seed()))
    }

    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        self.call_as(Some((PROJECT_ID, SECRET)), method, path, body)
            .await
    }

    pub async fn call_as(
        &self,
        credentials: Option<(&str, &str)>,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Answer {
        let mut request = Request::builder().method(method).uri(path);
        if let Some((user, password)) = credentials {
            let encoded = BASE64_STANDARD.encode(format!("{user}:{password}"));
            request = request.header(header::AUTHORIZATION, format!("Basic {encoded}"));
        }
        let body = match body {
            Some(json) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Body::from(json.to_string())
            }
            None => Body::empty(),
        };
        self.send(request.body(body).unwrap()).await
    }

    pub async fn send(&self, request: Request<Body>) -> Answer {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            json,
        }
    }

    /// The call log, as the admin API shows it.
    pub async fn calls(&self) -> Vec<Value> {
        let answer = self.call_as(None, Method::GET, "/_fake/calls", None).await;
        serde_json::from_value(answer.json).unwrap()
    }

    pub async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        self.call_as(None, method, path, body).await
    }

    /// A call as the project, on behalf of a member: `headers` are member-session headers.
    pub async fn call_with(
        &self,
        headers: &[(&str, &str)],
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Answer {
        let encoded = BASE64_STANDARD.encode(format!("{PROJECT_ID}:{SECRET}"));
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Basic {encoded}"));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let body = match body {
            Some(json) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Body::from(json.to_string())
            }
            None => Body::empty(),
        };
        self.send(request.body(body).unwrap()).await
    }
}

pub fn update_path(organization: &str, connection_id: &str) -> String {
    format!("/v1/b2b/sso/oidc/{organization}/connections/{connection_id}")
}
