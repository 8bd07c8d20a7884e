//! What a reliability scenario reports: one JSON fragment per scenario in
//! `<target dir>/reliability/<scenario>.json`, written before the scenario asserts, so that a
//! failed run still reports. `hack/reliability.sh` assembles the fragments into a report.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use stytch_sso_operator::crd::OidcConnection;

use super::redacted;

/// Sizes of a scenario: `short` (the default: what `cargo test` and CI run) or `full` (the
/// sizes the scenarios are specified with), from `RELIABILITY_PROFILE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    Short,
    Full,
}

impl Profile {
    pub fn from_env() -> Self {
        match std::env::var("RELIABILITY_PROFILE").as_deref() {
            Err(_) | Ok("") | Ok("short") => Self::Short,
            Ok("full") => Self::Full,
            Ok(other) => panic!("RELIABILITY_PROFILE is {other:?}; use short or full"),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Short => "short",
            Self::Full => "full",
        }
    }

    /// `short` in the short profile, `full` in the full one.
    pub fn pick<T>(self, short: T, full: T) -> T {
        match self {
            Self::Short => short,
            Self::Full => full,
        }
    }
}

/// Calls the fake Stytch received, by kind.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct StytchCalls {
    pub list: usize,
    pub put: usize,
    pub other: usize,
}

impl StytchCalls {
    pub fn of(calls: &[Value]) -> Self {
        let mut counts = Self::default();
        for call in calls {
            match call["method"].as_str() {
                Some("GET") => counts.list += 1,
                Some("PUT") => counts.put += 1,
                _ => counts.other += 1,
            }
        }
        counts
    }
}

/// One scenario's report, in the shape every scenario shares.
#[derive(Debug, Serialize)]
pub struct Fragment {
    pub scenario: String,
    pub profile: &'static str,
    pub faults_injected: Vec<String>,
    pub objects: usize,
    pub updates_lost: usize,
    pub max_calls_per_object_per_minute: Option<f64>,
    pub bound: String,
    pub recovery_seconds: Option<f64>,
    pub stytch_calls: StytchCalls,
    pub passed: bool,
    pub notes: String,
}

impl Fragment {
    /// Writes the fragment and returns where.
    pub fn write(&self) -> PathBuf {
        let dir = super::target_dir().join("reliability");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{}.json", self.scenario));
        std::fs::write(&path, serde_json::to_string_pretty(self).unwrap()).unwrap();
        eprintln!("reliability fragment: {}", path.display());
        path
    }
}

/// Seconds, rounded to milliseconds, for a report.
pub fn seconds(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 1000.0).round() / 1000.0
}

/// The most calls naming one connection (updates and deletes: a list names no connection)
/// that fell within any 60-second window of the call log.
pub fn max_calls_per_connection_per_minute(calls: &[Value]) -> f64 {
    let mut times: HashMap<String, Vec<i64>> = HashMap::new();
    for call in calls {
        let Some(path) = call["path"].as_str() else {
            continue;
        };
        let Some((_, connection)) = path.split_once("/connections/") else {
            continue;
        };
        let time: jiff::Timestamp = call["time"].as_str().unwrap().parse().unwrap();
        times
            .entry(connection.to_owned())
            .or_default()
            .push(time.as_millisecond());
    }
    let mut most = 0;
    for mut stamps in times.into_values() {
        stamps.sort_unstable();
        let mut start = 0;
        for end in 0..stamps.len() {
            while stamps[end] - stamps[start] >= 60_000 {
                start += 1;
            }
            most = most.max(end - start + 1);
        }
    }
    most as f64
}

/// Why an object's update counts as lost, if it does: its connection in the fake (`None` when
/// the fake has none) differs from a field its spec sets, or holds another client secret than
/// `client_secret`, or its status does not describe its current generation.
pub fn lost_update(
    object: &OidcConnection,
    connection: Option<&Value>,
    client_secret: &str,
) -> Option<String> {
    let name = object.metadata.name.as_deref().unwrap_or_default();
    let Some(connection) = connection else {
        return Some(format!("{name}: the fake has no connection"));
    };
    let spec = &object.spec;
    let owned = [
        ("display_name", spec.display_name.clone()),
        ("client_id", spec.client_id.clone()),
        ("issuer", spec.issuer.clone()),
        ("authorization_url", spec.authorization_url.clone()),
        ("token_url", spec.token_url.clone()),
        ("userinfo_url", spec.userinfo_url.clone()),
        ("jwks_url", spec.jwks_url.clone()),
        (
            "identity_provider",
            spec.identity_provider.map(|p| p.as_str().to_owned()),
        ),
    ];
    for (field, wanted) in owned {
        if let Some(wanted) = wanted
            && connection[field] != wanted.as_str()
        {
            return Some(format!(
                "{name}: {field} is {} in the fake, {wanted:?} in the spec",
                connection[field]
            ));
        }
    }
    if connection["client_secret"] != redacted(client_secret).as_str() {
        return Some(format!("{name}: the fake holds another client secret"));
    }
    let observed = object.status.as_ref().and_then(|s| s.observed_generation);
    if observed != object.metadata.generation {
        return Some(format!(
            "{name}: status describes generation {observed:?}, the object is at {:?}",
            object.metadata.generation
        ));
    }
    None
}
