//! Kubernetes operator that keeps Stytch B2B OIDC SSO connections in line with
//! `OidcConnection` resources.
//!
//! - [`crd`] holds the resource and its schema.
//! - [`stytch`] holds the HTTP client for Stytch.
//! - [`reconcile`] holds the decisions of a reconcile (what to send, what status to write), free of I/O.
//! - [`secrets`] holds reading values from Kubernetes Secrets.
//! - [`controller`] holds the wiring to Kubernetes and kube-runtime.
//! - [`telemetry`] holds logging, [`metrics`] the Prometheus metrics, [`http`] the endpoints
//!   for metrics and probes, [`leader`] leader election.

pub mod backoff;
pub mod controller;
pub mod crd;
pub mod http;
pub mod leader;
pub mod metrics;
pub mod reconcile;
pub mod secrets;
pub mod stytch;
pub mod telemetry;

/// Errors that make a reconcile retry with backoff.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API call failed: {0}")]
    Kube(#[source] kube::Error),

    #[error("invalid configuration: {0}")]
    Config(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
