//! A local fake of Stytch's B2B SSO API and of an OpenID Connect issuer.
//!
//! # What happens
//! Two listeners run side by side. The Stytch listener (plain HTTP) answers the four B2B SSO
//! calls the operator makes (list, create, update and delete of OIDC connections), checking the
//! member session of calls that carry one (RBAC), and session authenticate; and, under
//! `/_fake/`, an admin API that end-to-end tests and benchmarks use to seed state, read the call
//! log and inject faults. The issuer listener (HTTPS with a self-signed certificate made at
//! start) serves OpenID discovery documents for any tenant path, so issuer discovery can be
//! exercised without leaving the machine.
//!
//! # What is guaranteed
//! - No secret reaches a log line, the call log or the admin state view: client secrets,
//!   project secrets, session tokens and session JWTs only ever appear there as SHA-256
//!   fingerprints.
//! - Issuer discovery only contacts loopback hosts, and trusts only the fake's own certificate.
//!
//! # What is assumed
//! Where Stytch's public material is silent the fake makes a choice; every such choice lives in
//! [`unconfirmed`] so it can be changed in one place.

pub mod admin;
pub mod api;
pub mod app;
pub mod calllog;
pub mod discovery;
pub mod faults;
pub mod ids;
pub mod issuer;
pub mod ratelimit;
pub mod rbac;
pub mod redact;
pub mod seed;
pub mod serve;
pub mod server;
pub mod sessions;
pub mod state;
#[cfg(test)]
mod testing;
pub mod unconfirmed;

use std::{net::SocketAddr, path::PathBuf};

/// Why the fake could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("could not listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },

    #[error("could not read the seed file {path}")]
    ReadSeed {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("the seed file {path} is not valid")]
    ParseSeed {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },

    #[error("the seed is not valid: {0}")]
    InvalidSeed(#[from] seed::SeedError),

    #[error("could not make the issuer's self-signed certificate")]
    Certificate(#[source] rcgen::Error),

    #[error("could not set up TLS for the issuer")]
    Tls(#[source] rustls::Error),

    #[error("could not build the discovery HTTP client")]
    DiscoveryClient(#[source] reqwest::Error),

    #[error("could not write the ready file {path}")]
    ReadyFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("could not wait for a shutdown signal")]
    Signal(#[source] std::io::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
