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

pub fn app(seed_json: Value) -> Arc<App> {
    let seed: Seed = serde_json::from_value(seed_json).unwrap();
    let store = seed::build_store(seed, vec![], API_URL).unwrap();
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
}

pub fn update_path(organization: &str, connection_id: &str) -> String {
    format!("/v1/b2b/sso/oidc/{organization}/connections/{connection_id}")
}
