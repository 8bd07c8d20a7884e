//! `fake-stytch`: a local fake of Stytch's B2B SSO API and of an OIDC issuer.
//!
//! Prints one JSON line with the two base URLs once it listens; logs go to stderr.

use std::{io::IsTerminal, net::SocketAddr, path::PathBuf, process::ExitCode, time::Duration};

use clap::Parser;
use fake_stytch::{
    seed,
    server::{self, Options},
    state::Project,
};
use tracing_subscriber::EnvFilter;

#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Address of the Stytch API and the admin API (plain HTTP); port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,

    /// Address of the fake OIDC issuer (HTTPS, self-signed); port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    idp_listen: SocketAddr,

    /// JSON file with the initial projects, roles, organizations, members and sessions.
    #[arg(long)]
    seed: Option<PathBuf>,

    /// File to which the ready line is also written, atomically, once both listeners are bound.
    #[arg(long)]
    ready_file: Option<PathBuf>,

    /// A project the Stytch API accepts, as PROJECT_ID:SECRET; may be repeated.
    #[arg(long = "project", value_name = "ID:SECRET", value_parser = seed::parse_project)]
    projects: Vec<Project>,

    /// Milliseconds added to every Stytch API call.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,

    /// How many of the most recent calls the call log keeps.
    #[arg(long, default_value_t = server::DEFAULT_CALL_LOG_CAPACITY)]
    call_log_capacity: usize,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();

    // Pin aws-lc-rs as the process's rustls provider, so that a second provider compiled in by
    // feature unification can never leave rustls unable to pick one.
    let _already_installed = rustls::crypto::aws_lc_rs::default_provider().install_default();

    let cli = Cli::parse();
    let options = Options {
        listen: cli.listen,
        idp_listen: cli.idp_listen,
        seed: cli.seed,
        ready_file: cli.ready_file,
        projects: cli.projects,
        latency: Duration::from_millis(cli.latency_ms),
        call_log_capacity: cli.call_log_capacity,
    };

    match server::run(options).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let error: &dyn std::error::Error = &error;
            let mut message = error.to_string();
            let mut source = error.source();
            while let Some(cause) = source {
                message.push_str(": ");
                message.push_str(&cause.to_string());
                source = cause.source();
            }
            tracing::error!(error = %message, "fake stytch stopped");
            ExitCode::FAILURE
        }
    }
}
