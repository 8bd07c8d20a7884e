//! The reliability suite's shared parts: the profile, many objects at once, the check that no
//! update was lost, the fake's call log read per object, and the JSON fragment each scenario
//! writes for the report that `hack/reliability.sh` assembles.
//!
//! # Profiles
//! `RELIABILITY_PROFILE=short` (the default, what `cargo test` runs) keeps each scenario under
//! about a minute; `RELIABILITY_PROFILE=full` runs the sizes the report states.
//!
//! # Fragments
//! Each scenario writes `<target dir>/reliability/<scenario>.json` before it asserts, so that a
//! failed run still reports. A test file holding several scenarios names them
//! `<file's scenario>_<part>`; the report takes both forms as the file's.
//!
//! # Repeatability
//! Random choices (when to kill, which object to edit) come from one seed per run, printed and
//! written into the fragment's notes; `RELIABILITY_SEED=N` replays a run's choices. Timing on a
//! busy machine still varies, so a replay is close, not identical.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use kube::api::{Patch, PatchParams, PostParams};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::Serialize;
use serde_json::{Value, json};
use stytch_sso_operator::crd::OidcConnection;

use super::{FakeStytch, PROJECT_ID, PROJECT_SECRET, TestNamespace, redacted, target_dir};

/// Which sizes a scenario runs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    Short,
    Full,
}

impl Profile {
    /// From `RELIABILITY_PROFILE`; unset or empty is `short`, anything else unknown fails.
    pub fn from_env() -> Self {
        match std::env::var("RELIABILITY_PROFILE").as_deref() {
            Err(_) | Ok("" | "short") => Self::Short,
            Ok("full") => Self::Full,
            Ok(other) => panic!("RELIABILITY_PROFILE must be short or full, not {other:?}"),
        }
    }

    /// `short` or `full`, as this profile says.
    pub fn pick<T>(self, short: T, full: T) -> T {
        match self {
            Self::Short => short,
            Self::Full => full,
        }
    }
}

/// The run's random source and its seed (from `RELIABILITY_SEED`, or drawn and printed).
pub fn seeded_rng(scenario: &str) -> (u64, StdRng) {
    let seed = match std::env::var("RELIABILITY_SEED") {
        Ok(text) => text.parse().expect("RELIABILITY_SEED is a number"),
        Err(_) => rand::random(),
    };
    println!("{scenario}: RELIABILITY_SEED={seed}");
    (seed, StdRng::seed_from_u64(seed))
}

/// Stytch calls by kind, over a whole scenario.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct StytchCalls {
    pub list: usize,
    pub put: usize,
    pub other: usize,
}

impl StytchCalls {
    pub fn of(calls: &[Call]) -> Self {
        let mut counts = Self::default();
        for call in calls {
            match call.method.as_str() {
                "GET" => counts.list += 1,
                "PUT" => counts.put += 1,
                _ => counts.other += 1,
            }
        }
        counts
    }
}

/// What one scenario reports; the report is assembled from these (see `hack/reliability.sh`).
#[derive(Debug, Serialize)]
pub struct Fragment {
    pub scenario: String,
    pub profile: Profile,
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
    /// Writes `<target dir>/reliability/<scenario>.json` and prints it, before any assertion,
    /// so that a failed run still reports.
    pub fn write(&self) -> PathBuf {
        let dir = target_dir().join("reliability");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{}.json", self.scenario));
        let text = serde_json::to_string_pretty(self).unwrap();
        std::fs::write(&path, &text).unwrap();
        println!("{}: {text}", path.display());
        path
    }
}

/// Seconds, rounded to milliseconds, for a report.
pub fn seconds(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 1000.0).round() / 1000.0
}

/// `fields` of a spec, plus an `okta` identity provider at `issuer` with every URL explicit.
/// An issuer that is not a loopback host fails Stytch's discovery at once; with every URL
/// given, the connection is active anyway.
pub fn spec_with_identity_provider(issuer: &str, mut fields: Value) -> Value {
    let Value::Object(provider) = json!({
        "identityProvider": "okta",
        "issuer": issuer,
        "authorizationUrl": format!("{issuer}/authorize"),
        "tokenUrl": format!("{issuer}/token"),
        "userinfoUrl": format!("{issuer}/userinfo"),
        "jwksUrl": format!("{issuer}/keys"),
    }) else {
        unreachable!("a JSON object")
    };
    fields
        .as_object_mut()
        .expect("the spec's fields are a JSON object")
        .extend(provider);
    fields
}

/// One object of a bulk scenario and the spec it should have in the end.
#[derive(Clone, Debug)]
pub struct Desired {
    pub name: String,
    pub organization_id: String,
    pub connection_id: String,
    pub display_name: String,
}

impl Desired {
    /// `count` objects `obj-0000`..., `per_organization` of them in each organization.
    pub fn many(count: usize, per_organization: usize) -> Vec<Self> {
        (0..count)
            .map(|index| {
                let organization = index / per_organization;
                Self {
                    name: format!("obj-{index:04}"),
                    organization_id: format!("organization-test-rel-{organization:04}"),
                    connection_id: format!("oidc-connection-test-rel-{index:04}"),
                    display_name: format!("Object {index} v0"),
                }
            })
            .collect()
    }

    /// The spec, with the client secret in Secret `acme-oidc`.
    pub fn spec(&self) -> Value {
        spec_with_identity_provider(
            &format!("https://idp.example.test/{}", self.name),
            json!({
                "organizationId": self.organization_id,
                "connectionId": self.connection_id,
                "displayName": self.display_name,
                "clientId": format!("client-{}", self.name),
                "clientSecretRef": {"name": "acme-oidc", "key": "client_secret"},
            }),
        )
    }
}

/// A fake Stytch seed holding every object's connection, pending and unlike its spec.
pub fn seed(desired: &[Desired]) -> Value {
    let mut organizations: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    for object in desired {
        organizations
            .entry(&object.organization_id)
            .or_default()
            .push(
                json!({"connection_id": object.connection_id, "display_name": "Seeded",
                         "identity_provider": "generic"}),
            );
    }
    let organizations: Vec<Value> = organizations
        .into_iter()
        .map(|(id, connections)| json!({"organization_id": id, "connections": connections}))
        .collect();
    json!({
        "projects": [{"project_id": PROJECT_ID, "secret": PROJECT_SECRET}],
        "organizations": organizations,
    })
}

/// Creates every object through the API, a few at a time.
pub async fn create_objects(namespace: &TestNamespace, desired: &[Desired]) {
    let api = namespace.objects();
    futures::stream::iter(desired)
        .map(|object| {
            let api = api.clone();
            async move {
                let manifest = json!({
                    "apiVersion": "sso.stytch-operator.dev/v1alpha1", "kind": "OidcConnection",
                    "metadata": {"name": object.name}, "spec": object.spec(),
                });
                let manifest: OidcConnection = serde_json::from_value(manifest).unwrap();
                api.create(&PostParams::default(), &manifest)
                    .await
                    .map(drop)
            }
        })
        .buffer_unordered(16)
        .try_collect::<Vec<()>>()
        .await
        .expect("every object is created");
}

/// Changes an object's display name in the API and in `desired`.
pub async fn edit_display_name(namespace: &TestNamespace, desired: &mut Desired, name: String) {
    let patch = json!({"spec": {"displayName": name}});
    namespace
        .objects()
        .patch(
            &desired.name,
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .expect("the edit is accepted");
    desired.display_name = name;
}

/// Objects whose update is lost so far, each with why (see [`lost_update`]).
pub async fn lost_updates(
    namespace: &TestNamespace,
    fake: &FakeStytch,
    desired: &[Desired],
    client_secret: &str,
) -> Vec<String> {
    let objects = namespace.objects().list(&Default::default()).await.unwrap();
    let objects: HashMap<String, OidcConnection> = objects
        .items
        .into_iter()
        .map(|object| (object.metadata.name.clone().unwrap_or_default(), object))
        .collect();
    let connections = connections(fake).await;
    desired
        .iter()
        .filter_map(|want| match objects.get(&want.name) {
            None => Some(format!("{}: the object is gone", want.name)),
            Some(object) => {
                let connection = connections.get(&want.connection_id);
                lost_update(object, connection, client_secret)
            }
        })
        .collect()
}

/// Why an object's update counts as lost, if it does: its connection in the fake (`None` when
/// the fake has none) differs from a field its spec sets, or holds another client secret than
/// `client_secret`, or its status does not describe its current generation as Ready.
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
    status_problem(object).map(|problem| format!("{name}: {problem}"))
}

/// Why an object's status is not current and Ready, if it is not.
fn status_problem(object: &OidcConnection) -> Option<String> {
    let generation = object.metadata.generation;
    let Some(status) = &object.status else {
        return Some("no status".into());
    };
    if status.observed_generation != generation {
        return Some(format!(
            "status describes generation {:?}, the object is at {generation:?}",
            status.observed_generation
        ));
    }
    let ready = status.conditions.iter().find(|c| c.type_ == "Ready");
    match ready {
        Some(ready) if ready.status == "True" && ready.observed_generation == generation => None,
        Some(ready) => Some(format!("Ready {} ({})", ready.status, ready.reason)),
        None => Some("no Ready condition".into()),
    }
}

/// Every connection the fake holds, by connection id (secrets as fingerprints).
pub async fn connections(fake: &FakeStytch) -> HashMap<String, Value> {
    let url = format!("{}/_fake/state", fake.api_url);
    let state: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
    state["organizations"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|org| org["connections"].as_array().unwrap().iter())
        .map(|c| (c["connection_id"].as_str().unwrap().to_owned(), c.clone()))
        .collect()
}

/// Polls until no update is lost; `Ok` with how long it took, or `Err` with what is still
/// lost at `timeout`.
pub async fn wait_for_convergence(
    namespace: &TestNamespace,
    fake: &FakeStytch,
    desired: &[Desired],
    client_secret: &str,
    timeout: Duration,
) -> Result<Duration, Vec<String>> {
    let started = Instant::now();
    loop {
        let lost = lost_updates(namespace, fake, desired, client_secret).await;
        if lost.is_empty() {
            return Ok(started.elapsed());
        }
        if started.elapsed() > timeout {
            return Err(lost);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// One entry of the fake's call log.
#[derive(Clone, Debug)]
pub struct Call {
    /// Seconds since the Unix epoch.
    pub at: f64,
    pub method: String,
    pub path: String,
    /// 0 for a hung or dropped call.
    pub status: u64,
}

impl Call {
    /// The organization the path names: list, update and delete all name one.
    pub fn organization_id(&self) -> Option<&str> {
        let rest = self.path.strip_prefix("/v1/b2b/sso/")?;
        let rest = rest.strip_prefix("oidc/").unwrap_or(rest);
        rest.split('/').next().filter(|id| !id.is_empty())
    }

    /// The connection an update or a delete names.
    pub fn connection_id(&self) -> Option<&str> {
        let (_, rest) = self.path.split_once("/connections/")?;
        rest.split('/').next()
    }
}

/// The fake's call log.
pub async fn calls(fake: &FakeStytch) -> Vec<Call> {
    fake.calls()
        .await
        .iter()
        .map(|entry| Call {
            at: seconds_since_epoch(&entry["time"]),
            method: entry["method"].as_str().unwrap_or_default().to_owned(),
            path: entry["path"].as_str().unwrap_or_default().to_owned(),
            status: entry["status"].as_u64().unwrap_or_default(),
        })
        .collect()
}

fn seconds_since_epoch(time: &Value) -> f64 {
    let time: jiff::Timestamp = time.as_str().unwrap().parse().unwrap();
    time.as_millisecond() as f64 / 1000.0
}

/// Now, in seconds since the Unix epoch, comparable with [`Call::at`].
pub fn now_seconds() -> f64 {
    jiff::Timestamp::now().as_millisecond() as f64 / 1000.0
}

/// The most of `times` (seconds, any order) that fall in any window of `window` seconds.
pub fn max_in_window(times: &[f64], window: f64) -> usize {
    let mut times = times.to_vec();
    times.sort_by(f64::total_cmp);
    let mut start = 0;
    let mut most = 0;
    for end in 0..times.len() {
        while times[end] - times[start] > window {
            start += 1;
        }
        most = most.max(end + 1 - start);
    }
    most
}

/// The most calls naming one connection (updates and deletes: a list names no connection)
/// within any minute of the call log.
pub fn max_calls_per_connection_per_minute(calls: &[Call]) -> f64 {
    let mut times: HashMap<&str, Vec<f64>> = HashMap::new();
    for call in calls {
        if let Some(connection) = call.connection_id() {
            times.entry(connection).or_default().push(call.at);
        }
    }
    let most = times.values().map(|times| max_in_window(times, 60.0));
    most.max().unwrap_or(0) as f64
}
