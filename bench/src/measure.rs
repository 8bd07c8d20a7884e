//! What the benchmark observes besides the fake's call log: when each object becomes Ready
//! (from a watch, timed when the event arrives), and the operator's resident memory and CPU
//! time (from `/proc`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::StreamExt;
use jiff::Timestamp;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use stytch_sso_operator::crd::OidcConnection;
use tokio::task::JoinHandle;

use crate::error::{Error, Result};

/// The latest generation of each object seen `Ready=True` for that generation, and when.
#[derive(Clone, Copy, Debug)]
struct ReadyAt {
    generation: i64,
    at: Timestamp,
}

/// Watches the run's `OidcConnection`s and records when each becomes Ready for its current
/// generation (the Ready condition's `observedGeneration` equal to `metadata.generation`).
pub struct ReadyTracker {
    ready: Arc<Mutex<HashMap<String, ReadyAt>>>,
    task: JoinHandle<()>,
}

impl ReadyTracker {
    pub fn start(client: &Client, namespace: &str) -> Self {
        let api: Api<OidcConnection> = Api::namespaced(client.clone(), namespace);
        let ready = Arc::new(Mutex::new(HashMap::new()));
        let seen = ready.clone();
        let task = tokio::spawn(async move {
            let objects = watcher(api, watcher::Config::default()).default_backoff();
            let mut objects = std::pin::pin!(objects.applied_objects());
            while let Some(object) = objects.next().await {
                let Ok(object) = object else { continue };
                if let Some((name, generation)) = ready_generation(&object) {
                    record(&seen, name, generation);
                }
            }
        });
        Self { ready, task }
    }

    /// How many objects are Ready for at least `generation`, and when the last of them
    /// became so.
    pub fn ready_since(&self, generation: i64) -> (usize, Option<Timestamp>) {
        let ready = self.ready.lock().unwrap_or_else(PoisonError::into_inner);
        let fresh = ready.values().filter(|r| r.generation >= generation);
        fresh.fold((0, None), |(count, last), r| {
            (
                count + 1,
                Some(last.map_or(r.at, |last: Timestamp| last.max(r.at))),
            )
        })
    }

    /// When `name` became Ready for `generation` (or a later one), if it has.
    pub fn ready_at(&self, name: &str, generation: i64) -> Option<Timestamp> {
        let ready = self.ready.lock().unwrap_or_else(PoisonError::into_inner);
        ready
            .get(name)
            .filter(|r| r.generation >= generation)
            .map(|r| r.at)
    }

    /// Waits until `count` objects are Ready for generation 1 or later; returns when the last
    /// of them became Ready.
    pub async fn wait_for_all(&self, count: usize, timeout: Duration) -> Result<Timestamp> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let (ready, Some(last)) = self.ready_since(1)
                && ready >= count
            {
                return Ok(last);
            }
            if tokio::time::Instant::now() > deadline {
                let (ready, _) = self.ready_since(1);
                return Err(Error::Setup(format!(
                    "only {ready} of {count} objects were Ready after {timeout:?}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for ReadyTracker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn ready_generation(object: &OidcConnection) -> Option<(String, i64)> {
    let generation = object.metadata.generation?;
    let ready = object
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")?;
    let name = object.metadata.name.clone()?;
    let fresh = ready.observed_generation == Some(generation);
    (fresh && ready.status == "True").then_some((name, generation))
}

fn record(ready: &Mutex<HashMap<String, ReadyAt>>, name: String, generation: i64) {
    let mut ready = ready.lock().unwrap_or_else(PoisonError::into_inner);
    let known = ready.get(&name).map(|r| r.generation);
    if known.is_none_or(|known| known < generation) {
        let at = Timestamp::now();
        ready.insert(name, ReadyAt { generation, at });
    }
}

/// Resident memory and CPU time of a process, read from `/proc/PID`.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcessUsage {
    /// `VmRSS`: resident now.
    pub rss_kib: u64,
    /// `VmHWM`: the highest resident size since the process started.
    pub peak_rss_kib: u64,
    /// User plus system CPU time.
    pub cpu_seconds: f64,
}

impl ProcessUsage {
    pub fn of(pid: u32) -> Result<Self> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
        Ok(Self {
            rss_kib: status_kib(&status, "VmRSS:").unwrap_or(0),
            peak_rss_kib: status_kib(&status, "VmHWM:").unwrap_or(0),
            cpu_seconds: cpu_ticks(&stat).unwrap_or(0) as f64 / clock_ticks_per_second(),
        })
    }
}

fn status_kib(status: &str, field: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// `utime + stime` from `/proc/PID/stat`. The command name (field 2) may hold spaces, so
/// fields are counted after its closing parenthesis: utime and stime are fields 14 and 15.
fn cpu_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// `sysconf(_SC_CLK_TCK)` through `getconf`; Linux uses 100 on every common platform.
fn clock_ticks_per_second() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        let output = std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output();
        output
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|text| text.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_is_read_after_a_command_name_with_spaces() {
        let stat = "42 (tokio runtime) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 8 0";
        assert_eq!(cpu_ticks(stat), Some(300));
    }

    #[test]
    fn memory_fields_are_read_in_kib() {
        let status = "Name:\top\nVmHWM:\t   20480 kB\nVmRSS:\t   16384 kB\n";
        assert_eq!(status_kib(status, "VmRSS:"), Some(16384));
        assert_eq!(status_kib(status, "VmHWM:"), Some(20480));
    }
}
