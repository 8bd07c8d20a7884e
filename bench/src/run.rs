//! One run of one configuration, phase by phase:
//!
//! 1. the run's namespace, credentials and client-secret Secrets are created;
//! 2. a fresh fake Stytch (seeded, rate-limited) and a fresh operator start;
//! 3. every `OidcConnection` is created at once; the clock runs from the first create to the
//!    moment the last object is seen `Ready=True` (figure 1); the calls the fake logged up to
//!    then are the first sync (figure 2);
//! 4. after a short settling pause, one resync window with no drift (figure 3);
//! 5. sequential single spec edits, each timed to its update at the fake and to `Ready` for
//!    the new generation (figure 4);
//! 6. the operator's memory and CPU time throughout (figure 5); it is then stopped;
//! 7. the plain sequential script on a second fake with the same seed (figure 6);
//! 8. the run's objects are deleted.

use std::time::Duration;

use jiff::Timestamp;
use kube::Client;
use kube::api::{Api, Patch, PatchParams};
use serde::{Deserialize, Serialize};
use serde_json::json;
use stytch_sso_operator::crd::OidcConnection;

use crate::baseline;
use crate::error::{Error, Result};
use crate::fake::{CallCounts, FakeAdmin};
use crate::measure::{ProcessUsage, ReadyTracker};
use crate::processes::{FakeProcess, Locations, OperatorProcess, OperatorSettings};
use crate::stats::percentile;
use crate::workload::Workload;

/// Calls after convergence are left to settle this long before the resync window opens.
const SETTLE: Duration = Duration::from_secs(5);
/// Pause between two edits, so each one is alone in flight.
const BETWEEN_EDITS: Duration = Duration::from_millis(200);
/// An edit not applied within this time counts as missed.
const EDIT_TIMEOUT: Duration = Duration::from_secs(60);

/// What a configuration is: the workload, the fake's behaviour and the operator's flags.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Configuration {
    pub objects: usize,
    pub organizations: usize,
    pub unrelated_secrets: usize,
    /// The fake's limit and the operator's `--stytch-rate-limit`, calls per second.
    pub rate: u32,
    /// The fake's bucket; the operator's `--stytch-burst` stays below it.
    pub fake_burst: u32,
    pub operator_burst: u32,
    pub concurrency: u16,
    pub latency_ms: u64,
    pub resync_interval_secs: u64,
    pub edits: usize,
    /// Connections the plain script runs through before its time is extrapolated to all.
    pub baseline_sample: usize,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RunFigures {
    pub run: usize,
    /// Creating every `OidcConnection` (the Secrets existed before).
    pub apply_seconds: f64,
    pub convergence_seconds: f64,
    /// Convergence over the least time the rate limit allows, `objects / rate`.
    pub convergence_ratio: f64,
    pub first_sync: FirstSync,
    pub steady: Steady,
    pub edits: Edits,
    pub operator: Usage,
    pub baseline: Baseline,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct FirstSync {
    pub calls: u64,
    pub lists: u64,
    pub updates: u64,
    pub throttled: u64,
    /// One list per organization plus one update per connection.
    pub minimum: u64,
    pub ratio: f64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Steady {
    pub window_seconds: f64,
    pub calls: u64,
    pub lists: u64,
    pub updates: u64,
    pub throttled: u64,
    pub organizations_listed: usize,
    pub most_lists_of_one_organization: u64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Edits {
    pub made: usize,
    /// Edits whose update or Ready did not come within the timeout; not in the percentiles.
    pub missed: usize,
    pub to_update_ms: Vec<f64>,
    pub to_ready_ms: Vec<f64>,
    /// `None` when no edit got through.
    pub to_update_p50_ms: Option<f64>,
    pub to_update_p99_ms: Option<f64>,
    pub to_ready_p50_ms: Option<f64>,
    pub to_ready_p99_ms: Option<f64>,
    /// Every Stytch call during the edit phase, the edits' own included: how low the load was.
    pub calls_per_second: f64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Usage {
    pub peak_rss_mib: f64,
    /// Resident at the end of the resync window.
    pub steady_rss_mib: f64,
    pub cpu_seconds_to_convergence: f64,
    pub cpu_seconds_resync_window: f64,
    pub cpu_seconds_total: f64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Baseline {
    /// Connections the script actually ran through.
    pub sample: usize,
    pub sample_seconds: f64,
    /// For all `objects`: measured when `sample` is all of them, else extrapolated linearly.
    pub seconds: f64,
    pub extrapolated: bool,
    pub calls: u64,
    pub throttled: u64,
    /// The script's time over the operator's convergence time.
    pub ratio_to_operator: f64,
}

/// Runs the phases above once; `namespace` must be new.
pub async fn run_once(
    client: &Client,
    locations: &Locations,
    configuration: &Configuration,
    run: usize,
    namespace: &str,
) -> Result<RunFigures> {
    let workload = Workload::new(
        namespace,
        configuration.objects,
        configuration.organizations,
    );
    eprintln!(
        "[{namespace}] creating {} client Secrets",
        workload.connections.len()
    );
    workload.create_secrets(client).await?;

    let fake = FakeProcess::start(
        locations,
        "fake-stytch",
        &workload.seed(),
        configuration.latency_ms,
    )
    .await?;
    let admin = FakeAdmin::new(&fake.api_url);
    admin
        .set_rate_limit(configuration.rate, configuration.fake_burst)
        .await?;
    let operator = OperatorProcess::start(
        locations,
        &operator_settings(configuration, &workload, &fake),
    )
    .await?;
    let tracker = ReadyTracker::start(client, namespace);

    let mut figures = RunFigures {
        run,
        ..RunFigures::default()
    };
    let applied_at = Timestamp::now();
    eprintln!(
        "[{namespace}] applying {} OidcConnections",
        configuration.objects
    );
    figures.apply_seconds = workload.apply_objects(client).await?.as_secs_f64();
    converge(
        configuration,
        &admin,
        &tracker,
        applied_at,
        &operator,
        &mut figures,
    )
    .await?;
    eprintln!(
        "[{namespace}] converged in {:.1} s; resync window of {} s",
        figures.convergence_seconds, configuration.resync_interval_secs
    );

    steady_state(configuration, &admin, &operator, &mut figures).await?;
    eprintln!("[{namespace}] {} single edits", configuration.edits);
    figures.edits = edit(client, &workload, configuration, &admin, &tracker).await?;
    let usage = ProcessUsage::of(operator.pid)?;
    figures.operator.peak_rss_mib = mib(usage.peak_rss_kib);
    figures.operator.cpu_seconds_total = usage.cpu_seconds;
    operator.stop().await?;
    drop(fake);

    eprintln!("[{namespace}] the plain sequential script");
    figures.baseline = run_baseline(locations, configuration, &workload, &figures).await?;
    workload.delete(client).await?;
    Ok(figures)
}

fn operator_settings(
    configuration: &Configuration,
    workload: &Workload,
    fake: &FakeProcess,
) -> OperatorSettings {
    OperatorSettings {
        credentials_secret: workload.credentials_secret(),
        stytch_base_url: fake.api_url.clone(),
        resync_interval_secs: configuration.resync_interval_secs,
        rate_limit: configuration.rate,
        burst: configuration.operator_burst,
        concurrency: configuration.concurrency,
    }
}

/// Figures 1 and 2.
async fn converge(
    configuration: &Configuration,
    admin: &FakeAdmin,
    tracker: &ReadyTracker,
    applied_at: Timestamp,
    operator: &OperatorProcess,
    figures: &mut RunFigures,
) -> Result<()> {
    let least = configuration.objects as f64 / f64::from(configuration.rate);
    // Five times the least possible: a first sync starved by resyncs ends the run instead of
    // waiting for ever.
    let timeout = Duration::from_secs_f64((least * 5.0).max(300.0));
    let converged_at = tracker.wait_for_all(configuration.objects, timeout).await?;
    figures.operator.cpu_seconds_to_convergence = ProcessUsage::of(operator.pid)?.cpu_seconds;

    figures.convergence_seconds = seconds_between(applied_at, converged_at);
    figures.convergence_ratio = figures.convergence_seconds / least;

    let calls = admin.calls_since(0).await?;
    let first_sync = CallCounts::of(calls.iter().filter(|call| call.time <= converged_at));
    let minimum = (configuration.organizations + configuration.objects) as u64;
    figures.first_sync = FirstSync {
        calls: first_sync.total,
        lists: first_sync.lists,
        updates: first_sync.updates,
        throttled: first_sync.throttled,
        minimum,
        ratio: first_sync.total as f64 / minimum as f64,
    };
    Ok(())
}

/// Figure 3, and the steady part of figure 5.
async fn steady_state(
    configuration: &Configuration,
    admin: &FakeAdmin,
    operator: &OperatorProcess,
    figures: &mut RunFigures,
) -> Result<()> {
    tokio::time::sleep(SETTLE).await;
    let window = Duration::from_secs(configuration.resync_interval_secs);
    let since = admin.last_seq(0).await?;
    let opened = Timestamp::now();
    let cpu_before = ProcessUsage::of(operator.pid)?.cpu_seconds;
    tokio::time::sleep(window).await;
    let closed = Timestamp::now();
    let usage = ProcessUsage::of(operator.pid)?;

    let calls = admin.calls_since(since).await?;
    let in_window = calls.iter().filter(|c| c.time >= opened && c.time < closed);
    let counts = CallCounts::of(in_window);
    figures.steady = Steady {
        window_seconds: seconds_between(opened, closed),
        calls: counts.total,
        lists: counts.lists,
        updates: counts.updates,
        throttled: counts.throttled,
        organizations_listed: counts.lists_by_organization.len(),
        most_lists_of_one_organization: counts.most_lists_of_one_organization(),
    };
    figures.operator.steady_rss_mib = mib(usage.rss_kib);
    figures.operator.cpu_seconds_resync_window = usage.cpu_seconds - cpu_before;
    Ok(())
}

/// Figure 4: edits of `displayName` on objects spread over the workload, one at a time.
async fn edit(
    client: &Client,
    workload: &Workload,
    configuration: &Configuration,
    admin: &FakeAdmin,
    tracker: &ReadyTracker,
) -> Result<Edits> {
    let objects: Api<OidcConnection> = Api::namespaced(client.clone(), &workload.namespace);
    let mut edits = Edits::default();
    let mut cursor = admin.last_seq(0).await?;
    let phase_started = Timestamp::now();
    let first_cursor = cursor;
    let step = (workload.connections.len() / configuration.edits.max(1)).max(1);

    for k in 0..configuration.edits {
        let connection = &workload.connections[(k * step) % workload.connections.len()];
        let patch = json!({"spec": {"displayName": format!("Edited {k}")}});
        let edited_at = Timestamp::now();
        let edited = objects
            .patch(
                &connection.name,
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await?;
        let generation = edited.metadata.generation.unwrap_or(0);
        edits.made += 1;

        let update = wait_for_update(admin, &connection.connection_id, cursor).await?;
        let ready = wait_for_ready(tracker, &connection.name, generation).await;
        match (update, ready) {
            (Some(update), Some(ready_at)) => {
                edits
                    .to_update_ms
                    .push(1000.0 * seconds_between(edited_at, update.time));
                edits
                    .to_ready_ms
                    .push(1000.0 * seconds_between(edited_at, ready_at));
                cursor = update.seq;
            }
            _ => edits.missed += 1,
        }
        tokio::time::sleep(BETWEEN_EDITS).await;
    }

    let phase_calls = admin.calls_since(first_cursor).await?.len();
    edits.calls_per_second = phase_calls as f64 / seconds_between(phase_started, Timestamp::now());
    edits.to_update_p50_ms = percentile(&edits.to_update_ms, 50.0);
    edits.to_update_p99_ms = percentile(&edits.to_update_ms, 99.0);
    edits.to_ready_p50_ms = percentile(&edits.to_ready_ms, 50.0);
    edits.to_ready_p99_ms = percentile(&edits.to_ready_ms, 99.0);
    Ok(edits)
}

async fn wait_for_update(
    admin: &FakeAdmin,
    connection_id: &str,
    since: u64,
) -> Result<Option<crate::fake::Call>> {
    let deadline = tokio::time::Instant::now() + EDIT_TIMEOUT;
    while tokio::time::Instant::now() < deadline {
        if let Some(update) = admin.update_of(connection_id, since).await? {
            return Ok(Some(update));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(None)
}

async fn wait_for_ready(tracker: &ReadyTracker, name: &str, generation: i64) -> Option<Timestamp> {
    let deadline = tokio::time::Instant::now() + EDIT_TIMEOUT;
    while tokio::time::Instant::now() < deadline {
        if let Some(at) = tracker.ready_at(name, generation) {
            return Some(at);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}

/// Figure 6, on a fake of its own in the seeded state (the operator's fake is in sync by now).
async fn run_baseline(
    locations: &Locations,
    configuration: &Configuration,
    workload: &Workload,
    figures: &RunFigures,
) -> Result<Baseline> {
    let fake = FakeProcess::start(
        locations,
        "fake-stytch-baseline",
        &workload.seed(),
        configuration.latency_ms,
    )
    .await?;
    FakeAdmin::new(&fake.api_url)
        .set_rate_limit(configuration.rate, configuration.fake_burst)
        .await?;
    let sample = configuration
        .baseline_sample
        .clamp(1, workload.connections.len());
    let run = baseline::run(&fake.api_url, &workload.connections[..sample]).await?;

    let sample_seconds = run.elapsed.as_secs_f64();
    let seconds = sample_seconds * workload.connections.len() as f64 / sample as f64;
    if figures.convergence_seconds <= 0.0 {
        return Err(Error::Setup("the convergence time is zero".into()));
    }
    Ok(Baseline {
        sample,
        sample_seconds,
        seconds,
        extrapolated: sample < workload.connections.len(),
        calls: run.calls,
        throttled: run.throttled,
        ratio_to_operator: seconds / figures.convergence_seconds,
    })
}

fn seconds_between(from: Timestamp, to: Timestamp) -> f64 {
    (to.as_nanosecond() - from.as_nanosecond()) as f64 / 1e9
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}
