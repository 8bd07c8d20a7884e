//! What a team without an operator would run: a plain script that walks through the
//! connections one at a time, lists the connection's organization, finds the connection and
//! updates the fields that differ (and the client secret, which cannot be read back), with the
//! project's Basic auth as the operator uses. A 429 is waited out (100 ms, or `Retry-After`)
//! and the call repeated, as a careful script would.

use std::time::{Duration, Instant};

use reqwest::{StatusCode, header};
use serde_json::{Map, Value, json};

use crate::error::{Error, Result};
use crate::workload::{Connection, PROJECT_ID, PROJECT_SECRET};

/// How long a script waits after a 429 without `Retry-After`.
const THROTTLED_PAUSE: Duration = Duration::from_millis(100);

#[derive(Clone, Copy, Debug, Default)]
pub struct BaselineRun {
    pub elapsed: Duration,
    /// Every call sent, 429s included.
    pub calls: u64,
    pub throttled: u64,
}

/// Brings `connections` in line with their specs, one after the other.
pub async fn run(api_url: &str, connections: &[Connection]) -> Result<BaselineRun> {
    let script = Script {
        http: reqwest::Client::new(),
        api_url: api_url.to_owned(),
    };
    let mut run = BaselineRun::default();
    let started = Instant::now();
    for connection in connections {
        script.sync(connection, &mut run).await?;
    }
    run.elapsed = started.elapsed();
    Ok(run)
}

struct Script {
    http: reqwest::Client,
    api_url: String,
}

impl Script {
    async fn sync(&self, connection: &Connection, run: &mut BaselineRun) -> Result<()> {
        let list_url = format!("{}/v1/b2b/sso/{}", self.api_url, connection.organization_id);
        let list = self.send(run, || self.http.get(&list_url)).await?;
        let current = list["oidc_connections"]
            .as_array()
            .and_then(|all| {
                all.iter()
                    .find(|c| c["connection_id"] == *connection.connection_id)
            })
            .ok_or_else(|| {
                Error::Setup(format!(
                    "the fake has no connection {}",
                    connection.connection_id
                ))
            })?;

        let body = Value::Object(changes(connection, current)).to_string();
        let update_url = format!(
            "{}/v1/b2b/sso/oidc/{}/connections/{}",
            self.api_url, connection.organization_id, connection.connection_id
        );
        self.send(run, || {
            self.http
                .put(&update_url)
                .header(header::CONTENT_TYPE, "application/json")
                .body(body.clone())
        })
        .await?;
        Ok(())
    }

    /// Sends the request `build` makes until it is not refused with 429.
    async fn send(
        &self,
        run: &mut BaselineRun,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<Value> {
        loop {
            let response = build()
                .basic_auth(PROJECT_ID, Some(PROJECT_SECRET))
                .send()
                .await?;
            run.calls += 1;
            if response.status() != StatusCode::TOO_MANY_REQUESTS {
                return Ok(response.error_for_status()?.json().await?);
            }
            run.throttled += 1;
            tokio::time::sleep(retry_after(response.headers()).unwrap_or(THROTTLED_PAUSE)).await;
        }
    }
}

/// The fields of the spec that differ in Stytch, plus the client secret.
fn changes(connection: &Connection, current: &Value) -> Map<String, Value> {
    let desired = [
        ("display_name", connection.display_name.as_str()),
        ("identity_provider", "okta"),
        ("issuer", connection.issuer.as_str()),
        ("client_id", connection.client_id.as_str()),
    ];
    let mut body: Map<String, Value> = desired
        .into_iter()
        .filter(|(field, value)| current[field] != *value)
        .map(|(field, value)| (field.to_owned(), json!(value)))
        .collect();
    body.insert("client_secret".into(), json!(connection.client_secret));
    body
}

fn retry_after(headers: &header::HeaderMap) -> Option<Duration> {
    let seconds = headers
        .get(header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(seconds))
}
