//! Starting the fake: bind both listeners, load the seed, serve, and tell the caller where.
//!
//! The ready line (`{"api_url": ..., "issuer_base_url": ...}`) is printed only once both
//! listeners are bound, so a test that waits for it can connect at once. The ready file is
//! written to a temporary name and renamed, so a reader never sees half of it.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use axum::Router;
use serde::Serialize;
use tokio::{net::TcpListener, task::JoinHandle};

use crate::{
    Error, Result, admin, api,
    app::App,
    discovery::Discovery,
    issuer::{self, IssuerTls},
    seed::{self, Seed},
    serve,
    state::{Project, Store},
};

/// How many calls the call log keeps unless told otherwise.
pub const DEFAULT_CALL_LOG_CAPACITY: usize = 100_000;

/// Everything the command line sets. The default listens on free loopback ports with no seed
/// and no project, which is also how a test can start the fake in process.
#[derive(Clone, Debug)]
pub struct Options {
    pub listen: SocketAddr,
    pub idp_listen: SocketAddr,
    pub seed: Option<PathBuf>,
    pub ready_file: Option<PathBuf>,
    pub projects: Vec<Project>,
    pub latency: Duration,
    pub call_log_capacity: usize,
}

impl Default for Options {
    fn default() -> Self {
        let any_loopback_port = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        Self {
            listen: any_loopback_port,
            idp_listen: any_loopback_port,
            seed: None,
            ready_file: None,
            projects: vec![],
            latency: Duration::ZERO,
            call_log_capacity: DEFAULT_CALL_LOG_CAPACITY,
        }
    }
}

/// Where the fake can be reached.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Ready {
    pub api_url: String,
    pub issuer_base_url: String,
}

/// A started fake. Dropping it stops serving.
pub struct Running {
    pub ready: Ready,
    pub app: Arc<App>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Runs the fake until SIGINT or SIGTERM.
pub async fn run(options: Options) -> Result<()> {
    let ready_file = options.ready_file.clone();
    let running = start(options).await?;

    announce(&running.ready, ready_file.as_deref())?;
    tracing::info!(
        api_url = %running.ready.api_url,
        issuer_base_url = %running.ready.issuer_base_url,
        "fake stytch is ready"
    );

    shutdown_signal().await?;
    tracing::info!("shutting down");
    Ok(())
}

/// Binds, loads the seed and starts serving in the background.
pub async fn start(options: Options) -> Result<Running> {
    let api_listener = bind(options.listen).await?;
    let issuer_listener = bind(options.idp_listen).await?;
    let ready = Ready {
        api_url: format!(
            "http://{}",
            reachable(
                api_listener
                    .local_addr()
                    .map_err(bind_error(options.listen))?
            )
        ),
        issuer_base_url: format!(
            "https://localhost:{}",
            issuer_listener
                .local_addr()
                .map_err(bind_error(options.idp_listen))?
                .port()
        ),
    };

    let seed = read_seed(options.seed.as_deref())?;
    let mut store = seed::build_store(seed, &Store::default(), &ready.api_url)?;
    for project in options.projects {
        if !store.projects.contains(&project) {
            store.projects.push(project);
        }
    }
    if store.projects.is_empty() {
        tracing::warn!("no project is configured: every Stytch API call will be answered 401");
    }

    let tls = IssuerTls::generate()?;
    let discovery = Discovery::new(&tls.certificate_der).map_err(Error::DiscoveryClient)?;
    let app = Arc::new(App::new(
        ready.api_url.clone(),
        discovery,
        store,
        options.latency,
        options.call_log_capacity,
    ));

    let api = router(app.clone());
    let issuer = issuer::router(ready.issuer_base_url.clone());
    let tasks = vec![
        tokio::spawn(serve::serve_plain(api_listener, api)),
        tokio::spawn(serve::serve_tls(issuer_listener, tls.acceptor, issuer)),
    ];

    Ok(Running { ready, app, tasks })
}

/// The routes of the plain HTTP listener: the admin API under `/_fake` and the Stytch API.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .nest("/_fake", admin::router(app.clone()))
        .merge(api::router(app))
}

async fn bind(addr: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(bind_error(addr))
}

fn bind_error(addr: SocketAddr) -> impl FnOnce(std::io::Error) -> Error {
    move |source| Error::Bind { addr, source }
}

/// The bound address as a client should write it: a wildcard address becomes loopback.
fn reachable(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, addr.port()).to_string()
}

fn read_seed(path: Option<&Path>) -> Result<Seed> {
    let Some(path) = path else {
        return Ok(Seed::default());
    };
    let text = std::fs::read_to_string(path).map_err(|source| Error::ReadSeed {
        path: path.to_owned(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| Error::ParseSeed {
        path: path.to_owned(),
        source,
    })
}

/// Prints the ready line and writes the ready file.
fn announce(ready: &Ready, ready_file: Option<&Path>) -> Result<()> {
    let line = serde_json::to_string(ready).unwrap_or_default();
    println!("{line}");

    if let Some(path) = ready_file {
        write_atomically(path, &line).map_err(|source| Error::ReadyFile {
            path: path.to_owned(),
            source,
        })?;
    }
    Ok(())
}

fn write_atomically(path: &Path, contents: &str) -> std::io::Result<()> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(format!(".{}.tmp", std::process::id()));
    let temporary = PathBuf::from(temporary);

    std::fs::write(&temporary, contents)?;
    std::fs::rename(&temporary, path)
}

async fn shutdown_signal() -> Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(Error::Signal)?;
    tokio::select! {
        interrupted = tokio::signal::ctrl_c() => interrupted.map_err(Error::Signal),
        _ = terminate.recv() => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wildcard_address_is_announced_as_loopback() {
        assert_eq!(reachable("0.0.0.0:8080".parse().unwrap()), "127.0.0.1:8080");
        assert_eq!(reachable("[::]:8080".parse().unwrap()), "[::1]:8080");
        assert_eq!(reachable("127.0.0.2:1".parse().unwrap()), "127.0.0.2:1");
    }

    #[test]
    fn the_ready_file_is_written_whole_under_its_final_name() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("ready.json");
        let ready = Ready {
            api_url: "http://127.0.0.1:1".into(),
            issuer_base_url: "https://localhost:2".into(),
        };

        announce(&ready, Some(&path)).unwrap();

        let written = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            written,
            r#"{"api_url":"http://127.0.0.1:1","issuer_base_url":"https://localhost:2"}"#
        );
        assert_eq!(std::fs::read_dir(directory.path()).unwrap().count(), 1);
    }
}

#[cfg(test)]
mod socket_tests {
    //! The fake over real loopback sockets: TLS to its own issuer, and dropped connections.

    use serde_json::{Value, json};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::testing::{CONNECTION_ID, PROJECT_ID, SECRET, seed, update_path};

    async fn start_seeded() -> Running {
        let directory = tempfile::tempdir().unwrap();
        let seed_path = directory.path().join("seed.json");
        std::fs::write(&seed_path, seed().to_string()).unwrap();
        let options = Options {
            seed: Some(seed_path),
            ..Options::default()
        };
        start(options).await.unwrap()
    }

    async fn update(running: &Running, body: Value) -> Value {
        let url = format!(
            "{}{}",
            running.ready.api_url,
            update_path("acme", CONNECTION_ID)
        );
        let response = reqwest::Client::new()
            .put(url)
            .basic_auth(PROJECT_ID, Some(SECRET))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    #[tokio::test]
    async fn the_announced_urls_point_at_the_bound_ports() {
        let running = start_seeded().await;

        assert!(running.ready.api_url.starts_with("http://127.0.0.1:"));
        assert!(
            running
                .ready
                .issuer_base_url
                .starts_with("https://localhost:")
        );
        assert!(!running.ready.api_url.ends_with(":0"));
    }

    #[tokio::test]
    async fn discovery_from_the_fakes_own_issuer_fills_the_four_urls() {
        let running = start_seeded().await;
        let issuer = format!("{}/tenant-a/v2", running.ready.issuer_base_url);

        let answer = update(
            &running,
            json!({"issuer": format!("{issuer}/"), "jwks_url": "https://explicit/keys"}),
        )
        .await;

        assert_eq!(answer.get("warning"), None, "{answer}");
        let connection = &answer["connection"];
        assert_eq!(
            connection["authorization_url"],
            format!("{issuer}/oauth2/authorize")
        );
        assert_eq!(connection["token_url"], format!("{issuer}/oauth2/token"));
        assert_eq!(
            connection["userinfo_url"],
            format!("{issuer}/oauth2/userinfo")
        );
        assert_eq!(
            connection["jwks_url"], "https://explicit/keys",
            "explicit URLs win"
        );
    }

    #[tokio::test]
    async fn a_broken_tenant_gives_a_warning_and_is_not_fetched_again_for_the_same_issuer() {
        let running = start_seeded().await;
        let issuer = format!("{}/broken/t", running.ready.issuer_base_url);

        let first = update(&running, json!({"issuer": issuer, "client_id": "a"})).await;
        let warning = first["warning"].as_str().unwrap();
        assert!(warning.contains("404"), "{warning}");
        assert_eq!(first["connection"]["client_id"], "a");
        assert_eq!(first["connection"]["token_url"], "");

        let second = update(&running, json!({"issuer": issuer, "client_id": "b"})).await;
        assert_eq!(second.get("warning"), None);
    }

    #[tokio::test]
    async fn an_issuer_with_another_certificate_is_not_trusted() {
        let running = start_seeded().await;
        let other = start_seeded().await;
        let issuer = format!("{}/tenant", other.ready.issuer_base_url);

        let answer = update(&running, json!({"issuer": issuer})).await;

        let warning = answer["warning"].as_str().unwrap();
        assert!(
            warning.contains("certificate") || warning.contains("Certificate"),
            "{warning}"
        );
        assert_eq!(answer["connection"]["token_url"], "");
    }

    #[tokio::test]
    async fn a_seed_file_with_sessions_serves_rbac_under_stytchs_header_spelling() {
        let directory = tempfile::tempdir().unwrap();
        let seed_path = directory.path().join("seed.json");
        std::fs::write(&seed_path, crate::testing::rbac_seed().to_string()).unwrap();
        let running = start(Options {
            seed: Some(seed_path),
            ..Options::default()
        })
        .await
        .unwrap();
        let list = |session_header: &'static str, value: &'static str| {
            reqwest::Client::new()
                .get(format!("{}/v1/b2b/sso/globex", running.ready.api_url))
                .basic_auth(PROJECT_ID, Some(SECRET))
                .header(session_header, value)
                .send()
        };

        let by_jwt = list("X-Stytch-Member-SessionJWT", crate::testing::JWT_ADMIN)
            .await
            .unwrap();
        let by_token = list("X-Stytch-Member-Session", crate::testing::TOKEN_GLOBEX)
            .await
            .unwrap();

        assert_eq!(by_jwt.status(), 403, "an acme admin on globex");
        assert_eq!(by_token.status(), 200);
    }

    #[tokio::test]
    async fn a_drop_fault_closes_the_connection_without_a_response() {
        let running = start_seeded().await;
        let rules = json!([{"operation": "list", "action": {"drop": true}, "times": 1}]);
        reqwest::Client::new()
            .put(format!("{}/_fake/faults", running.ready.api_url))
            .json(&rules)
            .send()
            .await
            .unwrap();

        let address = running.ready.api_url.trim_start_matches("http://");
        let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
        let request = format!(
            "GET /v1/b2b/sso/acme HTTP/1.1\r\nHost: {address}\r\nAuthorization: Basic {}\r\n\r\n",
            base64::Engine::encode(
                &base64::prelude::BASE64_STANDARD,
                format!("{PROJECT_ID}:{SECRET}")
            )
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut received = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut received))
            .await
            .expect("the connection must be closed, not left open");

        assert!(
            read.is_err() || received.is_empty(),
            "got {:?}",
            String::from_utf8_lossy(&received)
        );
        let calls = running.app.calls.entries(None);
        assert_eq!(calls[0].call.status, 0);
    }
}
