//! Issuer discovery as Stytch does it on an update: fetch the issuer's OpenID configuration and
//! read the four endpoint URLs from it.
//!
//! # Guarantees
//! - Only loopback hosts are contacted: `localhost`, `127.0.0.0/8` and `::1`. Any other host is
//!   refused before any network I/O, DNS lookups included (`localhost` is pinned to the loopback
//!   addresses rather than resolved), so an issuer such as `https://acme.okta.com` takes the
//!   "could not be fetched" path on a machine without network.
//! - Only the fake issuer's own certificate is trusted; no other certificate is accepted.
//! - Redirects are not followed (they could lead off loopback) and proxies are not used.
//! - A fetch gives up after [`TIMEOUT`].

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    time::Duration,
};

use serde_json::Value;
use url::{Host, Url};

use crate::{state::DiscoveredUrls, unconfirmed};

pub const TIMEOUT: Duration = Duration::from_secs(5);

const WELL_KNOWN_PATH: &str = "/.well-known/openid-configuration";

/// Why an issuer's configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error("the issuer is not a valid URL")]
    InvalidUrl,
    #[error("{0} is not a loopback host, and this fake only contacts loopback hosts")]
    NotLoopback(String),
    #[error("the request failed: {0}")]
    Request(String),
    #[error("the issuer answered HTTP {0}")]
    Status(u16),
    #[error("the document is not a JSON object")]
    NotAnObject,
}

/// An HTTP client for discovery fetches.
#[derive(Clone)]
pub struct Discovery {
    client: reqwest::Client,
}

impl Discovery {
    /// A client that trusts only `trusted_certificate_der`, the fake issuer's certificate.
    pub fn new(trusted_certificate_der: &[u8]) -> Result<Self, reqwest::Error> {
        let certificate = reqwest::Certificate::from_der(trusted_certificate_der)?;
        let loopback = [
            SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            SocketAddr::from((Ipv6Addr::LOCALHOST, 0)),
        ];
        let client = reqwest::Client::builder()
            .tls_certs_only([certificate])
            .resolve_to_addrs("localhost", &loopback)
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(TIMEOUT)
            .build()?;
        Ok(Self { client })
    }

    /// The endpoints announced by `issuer`'s configuration, or the warning Stytch would give.
    pub async fn discover(&self, issuer: &str) -> Result<DiscoveredUrls, String> {
        let url = well_known_url(issuer);
        self.fetch(&url)
            .await
            .map_err(|error| unconfirmed::discovery_warning(&url, &error.to_string()))
    }

    async fn fetch(&self, url: &str) -> Result<DiscoveredUrls, DiscoveryError> {
        let parsed = Url::parse(url).map_err(|_| DiscoveryError::InvalidUrl)?;
        let host = parsed.host().ok_or(DiscoveryError::InvalidUrl)?;
        if !is_loopback(&host) {
            return Err(DiscoveryError::NotLoopback(host.to_string()));
        }

        let response = self
            .client
            .get(parsed)
            .send()
            .await
            .map_err(request_failed)?;
        if !response.status().is_success() {
            return Err(DiscoveryError::Status(response.status().as_u16()));
        }
        let document: Value = response.json().await.map_err(request_failed)?;

        endpoints(&document)
    }
}

/// `{issuer}/.well-known/openid-configuration`, after the trailing-slash rule.
pub fn well_known_url(issuer: &str) -> String {
    format!("{}{WELL_KNOWN_PATH}", unconfirmed::discovery_base(issuer))
}

fn is_loopback(host: &Host<&str>) -> bool {
    match host {
        Host::Domain(name) => name.eq_ignore_ascii_case("localhost"),
        Host::Ipv4(address) => IpAddr::V4(*address).is_loopback(),
        Host::Ipv6(address) => IpAddr::V6(*address).is_loopback(),
    }
}

/// The request error with its causes, which name what actually failed (refused, TLS, timeout).
fn request_failed(error: reqwest::Error) -> DiscoveryError {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    DiscoveryError::Request(text)
}

fn endpoints(document: &Value) -> Result<DiscoveredUrls, DiscoveryError> {
    let document = document.as_object().ok_or(DiscoveryError::NotAnObject)?;
    let field = |name: &str| {
        document
            .get(name)
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    Ok(DiscoveredUrls {
        authorization_url: field("authorization_endpoint"),
        token_url: field("token_endpoint"),
        userinfo_url: field("userinfo_endpoint"),
        jwks_url: field("jwks_uri"),
    })
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use serde_json::json;

    use super::*;
    use crate::issuer;

    #[test]
    fn one_trailing_slash_is_stripped_before_the_well_known_path() {
        assert_eq!(
            well_known_url("https://idp/t/"),
            "https://idp/t/.well-known/openid-configuration"
        );
        assert_eq!(
            well_known_url("https://idp/t"),
            "https://idp/t/.well-known/openid-configuration"
        );
    }

    #[test]
    fn only_loopback_hosts_count_as_loopback() {
        let loopback = |url: &str| is_loopback(&Url::parse(url).unwrap().host().unwrap());
        for url in [
            "https://localhost:1",
            "https://127.0.0.1",
            "https://127.9.9.9",
            "https://[::1]",
        ] {
            assert!(loopback(url), "{url}");
        }
        for url in [
            "https://acme.okta.com",
            "https://10.0.0.1",
            "https://localhost.evil.com",
        ] {
            assert!(!loopback(url), "{url}");
        }
    }

    #[test]
    fn missing_endpoints_are_left_out_rather_than_cleared() {
        let found = endpoints(&json!({"token_endpoint": "https://idp/token"})).unwrap();
        assert_eq!(found.token_url.as_deref(), Some("https://idp/token"));
        assert_eq!(found.jwks_url, None);
    }

    #[tokio::test]
    async fn a_remote_issuer_is_refused_at_once_with_a_warning() {
        let tls = issuer::IssuerTls::generate().unwrap();
        let discovery = Discovery::new(&tls.certificate_der).unwrap();
        let started = Instant::now();

        let warning = discovery
            .discover("https://acme.okta.com/")
            .await
            .unwrap_err();

        assert!(started.elapsed() < Duration::from_millis(100));
        assert!(warning.contains("https://acme.okta.com/.well-known/openid-configuration"));
        assert!(warning.contains("not a loopback host"), "{warning}");
    }
}
