//! `stytch-sso-operator`: `run` the controller, or print the `crd`.

use std::num::NonZeroU32;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use kube::CustomResourceExt;
use stytch_sso_operator::controller::{self, SecretName};
use stytch_sso_operator::crd::OidcConnection;
use stytch_sso_operator::stytch::RateLimit;
use stytch_sso_operator::telemetry::{self, LogFormat};

#[derive(Parser, Debug)]
#[command(
    version,
    about = "Keeps Stytch B2B OIDC SSO connections in line with Kubernetes resources"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the controller against the cluster of the current kubeconfig or service account.
    Run(RunArgs),
    /// Print the OidcConnection CustomResourceDefinition as YAML.
    Crd,
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    /// Secret (NAMESPACE/NAME) with the default Stytch project credentials, in keys
    /// `project_id` and `secret`.
    #[arg(long, env = "STYTCH_CREDENTIALS_SECRET")]
    credentials_secret: SecretName,

    /// Stytch API base URL; by default chosen from the project id (live or test).
    #[arg(long, env = "STYTCH_BASE_URL")]
    stytch_base_url: Option<String>,

    /// Watch only this namespace (all namespaces when unset).
    #[arg(long, env = "WATCH_NAMESPACE")]
    watch_namespace: Option<String>,

    /// Resync interval for objects that do not set spec.resyncInterval.
    #[arg(long, env = "RESYNC_INTERVAL", default_value = "10m", value_parser = humantime::parse_duration)]
    resync_interval: Duration,

    /// Longest wait between retries of a failing object.
    #[arg(long, env = "BACKOFF_CAP", default_value = "5m", value_parser = humantime::parse_duration)]
    backoff_cap: Duration,

    /// Most calls per second to Stytch, per project (a token bucket).
    #[arg(long, env = "STYTCH_RATE_LIMIT", default_value_t = NonZeroU32::new(10).unwrap())]
    stytch_rate_limit: NonZeroU32,

    /// Calls to Stytch that may go at once before the rate limit applies, per project.
    #[arg(long, env = "STYTCH_BURST", default_value_t = NonZeroU32::new(20).unwrap())]
    stytch_burst: NonZeroU32,

    /// Most reconciles running at once.
    #[arg(long, env = "CONCURRENCY", default_value_t = 16)]
    concurrency: u16,

    /// Log format; levels come from RUST_LOG.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Crd => match serde_saphyr::to_string(&OidcConnection::crd()) {
            Ok(yaml) => {
                print!("{yaml}");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("cannot render the CRD: {error}");
                ExitCode::FAILURE
            }
        },
        Command::Run(args) => run(args).await,
    }
}

async fn run(args: RunArgs) -> ExitCode {
    telemetry::init(args.log_format);
    let client = match kube::Client::try_default().await {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(%error, "cannot reach Kubernetes; check KUBECONFIG or the service account");
            return ExitCode::FAILURE;
        }
    };
    let config = controller::Config {
        stytch_base_url: args.stytch_base_url,
        credentials_secret: args.credentials_secret,
        watch_namespace: args.watch_namespace,
        resync_interval: args.resync_interval,
        backoff_base: Duration::from_secs(1),
        backoff_cap: args.backoff_cap,
        rate_limit: RateLimit {
            requests_per_second: args.stytch_rate_limit,
            burst: args.stytch_burst,
        },
        concurrency: args.concurrency,
    };
    match controller::run(client, config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "the controller stopped");
            ExitCode::FAILURE
        }
    }
}
