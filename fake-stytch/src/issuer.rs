//! The fake OpenID Connect issuer: discovery documents for any tenant path, over HTTPS with a
//! self-signed certificate made at start.
//!
//! A tenant is any path prefix, of one or several segments: the issuer of tenant `a/b` is
//! `{base}/a/b` and its document is at `{base}/a/b/.well-known/openid-configuration`. Tenants
//! whose first segment is `broken` answer 404, so tests can make discovery fail on purpose.
//! Only discovery and an empty key set are served; no login flow runs here.

use std::sync::Arc;

use axum::{
    Json, Router,
    extract::State,
    http::{StatusCode, Uri},
    response::{IntoResponse, Response},
    routing::get,
};
use serde_json::json;
use tokio_rustls::TlsAcceptor;

const WELL_KNOWN_SUFFIX: &str = "/.well-known/openid-configuration";
const KEYS_SUFFIX: &str = "/oauth2/keys";

/// The issuer's certificate and the TLS acceptor that presents it.
pub struct IssuerTls {
    /// DER of the self-signed certificate, for clients that must trust it.
    pub certificate_der: Vec<u8>,
    pub acceptor: TlsAcceptor,
}

impl IssuerTls {
    /// A fresh key pair and a self-signed certificate for `localhost` and `127.0.0.1`.
    pub fn generate() -> crate::Result<Self> {
        let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        let certified =
            rcgen::generate_simple_self_signed(names).map_err(crate::Error::Certificate)?;
        let certificate_der = certified.cert.der().to_vec();
        let key =
            rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());

        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(crate::Error::Tls)?
            .with_no_client_auth()
            .with_single_cert(vec![certified.cert.der().clone()], key)
            .map_err(crate::Error::Tls)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];

        Ok(Self {
            certificate_der,
            acceptor: TlsAcceptor::from(Arc::new(config)),
        })
    }
}

/// The issuer's routes. `base_url` is `https://localhost:PORT`.
pub fn router(base_url: String) -> Router {
    Router::new()
        .fallback(get(serve))
        .with_state(Arc::<str>::from(base_url))
}

/// What a request path asks for.
#[derive(Debug, PartialEq, Eq)]
enum Endpoint<'a> {
    Discovery { tenant: &'a str },
    Keys { tenant: &'a str },
    Unknown,
}

fn endpoint(path: &str) -> Endpoint<'_> {
    if let Some(prefix) = path.strip_suffix(WELL_KNOWN_SUFFIX) {
        Endpoint::Discovery {
            tenant: prefix.trim_start_matches('/'),
        }
    } else if let Some(prefix) = path.strip_suffix(KEYS_SUFFIX) {
        Endpoint::Keys {
            tenant: prefix.trim_start_matches('/'),
        }
    } else {
        Endpoint::Unknown
    }
}

fn is_broken(tenant: &str) -> bool {
    tenant.split('/').next() == Some("broken")
}

async fn serve(State(base_url): State<Arc<str>>, uri: Uri) -> Response {
    match endpoint(uri.path()) {
        Endpoint::Discovery { tenant } if !is_broken(tenant) => {
            Json(document(&base_url, tenant)).into_response()
        }
        Endpoint::Keys { tenant } if !is_broken(tenant) => {
            Json(json!({"keys": []})).into_response()
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

fn document(base_url: &str, tenant: &str) -> serde_json::Value {
    let issuer = if tenant.is_empty() {
        base_url.to_owned()
    } else {
        format!("{base_url}/{tenant}")
    };
    json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/oauth2/authorize"),
        "token_endpoint": format!("{issuer}/oauth2/token"),
        "userinfo_endpoint": format!("{issuer}/oauth2/userinfo"),
        "jwks_uri": format!("{issuer}/oauth2/keys"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", "email", "profile"],
    })
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use tower::ServiceExt;

    use super::*;

    const BASE: &str = "https://localhost:8443";

    async fn get_path(path: &str) -> (StatusCode, serde_json::Value) {
        let request = axum::http::Request::get(path).body(Body::empty()).unwrap();
        let response = router(BASE.into()).oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
        )
    }

    #[tokio::test]
    async fn a_tenant_of_several_segments_gets_its_own_issuer_and_endpoints() {
        let (status, document) = get_path("/a/b/.well-known/openid-configuration").await;

        assert_eq!(status, StatusCode::OK);
        assert_eq!(document["issuer"], "https://localhost:8443/a/b");
        assert_eq!(
            document["authorization_endpoint"],
            "https://localhost:8443/a/b/oauth2/authorize"
        );
        assert_eq!(
            document["token_endpoint"],
            "https://localhost:8443/a/b/oauth2/token"
        );
        assert_eq!(
            document["userinfo_endpoint"],
            "https://localhost:8443/a/b/oauth2/userinfo"
        );
        assert_eq!(
            document["jwks_uri"],
            "https://localhost:8443/a/b/oauth2/keys"
        );
    }

    #[tokio::test]
    async fn tenants_under_broken_answer_not_found() {
        let (status, _) = get_path("/broken/x/.well-known/openid-configuration").await;
        assert_eq!(status, StatusCode::NOT_FOUND);

        let (status, _) = get_path("/not-broken/.well-known/openid-configuration").await;
        assert_eq!(status, StatusCode::OK);
    }

    #[tokio::test]
    async fn the_key_set_is_served_empty() {
        let (status, keys) = get_path("/t/oauth2/keys").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(keys, json!({"keys": []}));
    }

    #[test]
    fn a_self_signed_certificate_is_made_at_start() {
        assert!(!IssuerTls::generate().unwrap().certificate_der.is_empty());
    }
}
