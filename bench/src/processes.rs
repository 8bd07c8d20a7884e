//! The fake Stytch and the operator, as release-build processes of their own, each logging to
//! a file in the run's directory. Both are killed when their handle is dropped, so a failed
//! run leaves nothing behind.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::process::{Child, Command};

use crate::error::{Error, Result};

/// Where the benchmark finds the binaries and puts their files.
#[derive(Clone, Debug)]
pub struct Locations {
    /// The release builds of `fake-stytch` and `stytch-sso-operator`.
    pub bin_dir: PathBuf,
    /// Seeds, ready files and logs of one run.
    pub work_dir: PathBuf,
}

pub struct FakeProcess {
    /// Killed on drop.
    _child: Child,
    pub api_url: String,
}

impl FakeProcess {
    /// Starts the fake with `seed` and `latency_ms` added to every Stytch API call; `name`
    /// tells its files apart.
    pub async fn start(
        locations: &Locations,
        name: &str,
        seed: &Value,
        latency_ms: u64,
    ) -> Result<Self> {
        let seed_path = locations.work_dir.join(format!("{name}.seed.json"));
        let ready_path = locations.work_dir.join(format!("{name}.ready.json"));
        let _ = std::fs::remove_file(&ready_path);
        std::fs::write(&seed_path, seed.to_string())?;
        let log = std::fs::File::create(locations.work_dir.join(format!("{name}.log")))?;

        // The call log must hold every call of a run: the figures are counted from it.
        let child = Command::new(binary(&locations.bin_dir, "fake-stytch")?)
            .args(["--listen", "127.0.0.1:0", "--idp-listen", "127.0.0.1:0"])
            .arg("--seed")
            .arg(&seed_path)
            .arg("--ready-file")
            .arg(&ready_path)
            .args(["--latency-ms", &latency_ms.to_string()])
            .args(["--call-log-capacity", "2000000"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()?;

        let ready = wait_for("the fake Stytch to listen", Duration::from_secs(20), || {
            let text = std::fs::read_to_string(&ready_path).ok()?;
            serde_json::from_str::<Value>(&text).ok()
        })
        .await?;
        let api_url = ready["api_url"]
            .as_str()
            .ok_or_else(|| Error::Setup("the fake's ready line has no api_url".into()))?
            .to_owned();
        Ok(Self {
            _child: child,
            api_url,
        })
    }
}

/// How the operator is run; see the README's "Running the operator".
#[derive(Clone, Debug)]
pub struct OperatorSettings {
    pub credentials_secret: String,
    pub stytch_base_url: String,
    pub resync_interval_secs: u64,
    pub rate_limit: u32,
    pub burst: u32,
    pub concurrency: u16,
}

pub struct OperatorProcess {
    child: Child,
    pub pid: u32,
    pub endpoints_url: String,
}

impl OperatorProcess {
    /// Starts the operator watching every namespace (so the unrelated Secrets are in its
    /// watch) and waits until it reports ready.
    pub async fn start(locations: &Locations, settings: &OperatorSettings) -> Result<Self> {
        let port = free_port()?;
        let log = std::fs::File::create(locations.work_dir.join("operator.log"))?;
        let child = Command::new(binary(&locations.bin_dir, "stytch-sso-operator")?)
            .arg("run")
            .args(["--credentials-secret", &settings.credentials_secret])
            .args(["--stytch-base-url", &settings.stytch_base_url])
            .args(["--metrics-bind-address", &format!("127.0.0.1:{port}")])
            .args([
                "--resync-interval",
                &format!("{}s", settings.resync_interval_secs),
            ])
            .args(["--stytch-rate-limit", &settings.rate_limit.to_string()])
            .args(["--stytch-burst", &settings.burst.to_string()])
            .args(["--concurrency", &settings.concurrency.to_string()])
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()?;
        let pid = child
            .id()
            .ok_or_else(|| Error::Setup("the operator exited at once".into()))?;
        let operator = Self {
            child,
            pid,
            endpoints_url: format!("http://127.0.0.1:{port}"),
        };
        operator.wait_until_ready().await?;
        Ok(operator)
    }

    async fn wait_until_ready(&self) -> Result<()> {
        let http = reqwest::Client::new();
        let url = format!("{}/readyz", self.endpoints_url);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let ready = http.get(&url).send().await.ok();
            if ready.is_some_and(|response| response.status().is_success()) {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                return Err(Error::Setup(
                    "the operator was not ready within 60 s; see operator.log".into(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGKILL, then wait: the benchmark is over with this process.
    pub async fn stop(mut self) -> Result<()> {
        self.child.kill().await?;
        Ok(())
    }
}

fn binary(bin_dir: &Path, name: &str) -> Result<PathBuf> {
    let path = bin_dir.join(name);
    if path.exists() {
        Ok(path)
    } else {
        Err(Error::Setup(format!(
            "{} is missing: build it with `cargo build --release --workspace --bins`",
            path.display()
        )))
    }
}

/// A port nobody listens on right now. The operator binds it a moment later; another process
/// taking it in between would make the operator fail to start, not measure wrongly.
fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

async fn wait_for<T>(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> Option<T>,
) -> Result<T> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return Ok(value);
        }
        if tokio::time::Instant::now() > deadline {
            return Err(Error::Setup(format!(
                "timed out after {timeout:?} waiting for {what}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
