//! Reliability: Stytch fails in each of six ways for a stated period (429 with and without
//! `Retry-After`, 500, 503, calls that hang past the operator's 35 s timeout, dropped
//! connections). Every object's spec is edited as the faults begin, so each keeps trying.
//! During the faults no object may call Stytch more often than its backoff allows; once they
//! are cleared, every object converges.
//!
//! Each fault kind has objects of its own, all kinds at once; every object is alone in its
//! organization, so a call is attributed to its object by the organization in the path (a
//! list names only the organization; an update names it too).
//!
//! # The bound on calls
//! From `src/backoff.rs`: after the k-th failure in a row an object waits
//! `max(min(Retry-After, cap), U[0, min(cap, 1 s x 2^(k-1))])` (full jitter, `Retry-After` as a
//! floor); a success resets k. While every call fails, an attempt makes exactly one call (its
//! first call fails, ending it). Full jitter has no positive least delay, so the bound is
//! probabilistic: the largest n such that n attempts fit in the window with probability above
//! 1e-6 (over every attempt the window may start at; computed in [`attempts_bound`]). A hung
//! call holds its attempt for the 35 s timeout, which is then the floor. The window is 60 s, or
//! the whole fault period when that is shorter.

mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{Value, json};
use support::reliability::{self, Desired, Fragment, Profile, StytchCalls};
use support::*;

const SCENARIO: &str = "stytch_faults";
const CLIENT_SECRET: &str = "SENTINEL-CLIENT-SECRET-faults-1c9e7b42";
/// `src/stytch/mod.rs`: `REQUEST_TIMEOUT`, which no flag changes.
const CLIENT_TIMEOUT_SECS: f64 = 35.0;
/// `src/main.rs`: the first retry delay, which no flag changes.
const BACKOFF_BASE_SECS: f64 = 1.0;
/// Chance, per object, that a correct backoff would still exceed the bound.
const TOLERANCE: f64 = 1e-6;
const WINDOW_SECS: f64 = 60.0;

/// The sizes of one profile.
struct Plan {
    objects_per_fault: usize,
    fault_period: Duration,
    retry_after_secs: u64,
    /// `--backoff-cap`: short, so that the short run recovers quickly; the default otherwise.
    backoff_cap_secs: u64,
    convergence_timeout: Duration,
}

impl Plan {
    fn for_profile(profile: Profile) -> Self {
        profile.pick(
            Self {
                objects_per_fault: 3,
                fault_period: Duration::from_secs(8),
                retry_after_secs: 3,
                backoff_cap_secs: 10,
                convergence_timeout: Duration::from_secs(60),
            },
            Self {
                objects_per_fault: 10,
                fault_period: Duration::from_secs(60),
                retry_after_secs: 10,
                backoff_cap_secs: 300,
                convergence_timeout: Duration::from_secs(400),
            },
        )
    }
}

/// One way Stytch fails.
#[derive(Clone, Copy, Debug)]
enum Fault {
    TooManyRequestsWithRetryAfter(u64),
    TooManyRequests,
    InternalServerError,
    ServiceUnavailable,
    Hang,
    Drop,
}

impl Fault {
    fn all(retry_after_secs: u64) -> [Self; 6] {
        [
            Self::TooManyRequestsWithRetryAfter(retry_after_secs),
            Self::TooManyRequests,
            Self::InternalServerError,
            Self::ServiceUnavailable,
            Self::Hang,
            Self::Drop,
        ]
    }

    fn label(self) -> String {
        match self {
            Self::TooManyRequestsWithRetryAfter(secs) => format!("429 with Retry-After: {secs}"),
            Self::TooManyRequests => "429 without Retry-After".into(),
            Self::InternalServerError => "500".into(),
            Self::ServiceUnavailable => "503".into(),
            Self::Hang => format!("hang past the {CLIENT_TIMEOUT_SECS} s client timeout"),
            Self::Drop => "dropped connection".into(),
        }
    }

    /// The fake's fault action (see fake-stytch/README.md).
    fn action(self) -> Value {
        match self {
            Self::TooManyRequestsWithRetryAfter(secs) => {
                json!({"status": 429, "retry_after_secs": secs})
            }
            Self::TooManyRequests => json!({"status": 429}),
            Self::InternalServerError => json!({"status": 500}),
            Self::ServiceUnavailable => json!({"status": 503}),
            Self::Hang => json!({"hang": true}),
            Self::Drop => json!({"drop": true}),
        }
    }

    /// The least time between two calls of one object that this fault forces, in seconds.
    fn floor_secs(self, cap: f64) -> f64 {
        match self {
            Self::TooManyRequestsWithRetryAfter(secs) => (secs as f64).min(cap),
            Self::Hang => CLIENT_TIMEOUT_SECS,
            _ => 0.0,
        }
    }
}

/// What one fault kind's objects did during the fault.
struct Measured {
    fault: Fault,
    bound: usize,
    /// Per object, the most calls in any window during the fault.
    most: usize,
    over_bound: Vec<String>,
    /// Seconds from clearing the faults until Stytch had the last of these objects' updates.
    recovery: Option<f64>,
}

/// When the faults were in force, in seconds since the Unix epoch.
#[derive(Clone, Copy)]
struct FaultPeriod {
    start: f64,
    end: f64,
}

impl FaultPeriod {
    /// The window calls are counted in: a minute, or the whole period when shorter.
    fn window(self) -> f64 {
        WINDOW_SECS.min(self.end - self.start)
    }
}

#[tokio::test]
async fn after_each_kind_of_stytch_fault_every_object_converges_within_its_backoff() {
    let profile = Profile::from_env();
    let plan = Plan::for_profile(profile);
    let faults = Fault::all(plan.retry_after_secs);
    let namespace = TestNamespace::with_client_secret("rel-faults", CLIENT_SECRET).await;
    let mut desired = Desired::many(faults.len() * plan.objects_per_fault, 1);
    let fake = FakeStytch::start_with_seed(&namespace.name, reliability::seed(&desired)).await;
    reliability::create_objects(&namespace, &desired).await;
    let _operator = start_operator(&namespace, &fake, &plan);
    let ready = reliability::wait_for_convergence(
        &namespace,
        &fake,
        &desired,
        CLIENT_SECRET,
        Duration::from_secs(60),
    )
    .await;
    assert!(
        ready.is_ok(),
        "objects not ready before the faults: {ready:?}"
    );

    let period = inject_faults(&namespace, &fake, &mut desired, &faults, &plan).await;
    let cleared = Instant::now();
    let outcome = reliability::wait_for_convergence(
        &namespace,
        &fake,
        &desired,
        CLIENT_SECRET,
        plan.convergence_timeout,
    )
    .await;
    let recovery = outcome
        .as_ref()
        .ok()
        .map(|_| cleared.elapsed().as_secs_f64());

    let calls = reliability::calls(&fake).await;
    let measured = measure(&calls, &desired, &faults, &plan, period);
    let lost = outcome.err().unwrap_or_default();
    let over_bound: Vec<String> = measured.iter().flat_map(|m| m.over_bound.clone()).collect();
    let fragment = Fragment {
        scenario: SCENARIO.into(),
        profile,
        faults_injected: faults
            .iter()
            .map(|fault| {
                format!(
                    "{} on every call of {} objects for {:.1} s",
                    fault.label(),
                    plan.objects_per_fault,
                    period.end - period.start
                )
            })
            .collect(),
        objects: desired.len(),
        updates_lost: lost.len(),
        // Any minute within a shorter fault period holds at most the period's calls.
        max_calls_per_object_per_minute: measured.iter().map(|m| m.most as f64).reduce(f64::max),
        bound: bound_line(&measured, period),
        recovery_seconds: recovery,
        stytch_calls: StytchCalls::of(&calls),
        passed: lost.is_empty() && over_bound.is_empty(),
        notes: notes(&measured, &plan, period, &over_bound, &lost),
    };
    fragment.write();

    assert!(lost.is_empty(), "updates lost: {lost:?}");
    assert!(
        over_bound.is_empty(),
        "objects called Stytch more often than their backoff allows: {over_bound:?}"
    );
}

fn start_operator(namespace: &TestNamespace, fake: &FakeStytch, plan: &Plan) -> Operator {
    // Enough concurrency that a hung call does not hold up other objects, and a rate limit
    // above what the objects' backoff allows, so that the backoff alone is measured.
    let backoff_cap = format!("{}s", plan.backoff_cap_secs);
    let args = [
        "--backoff-cap",
        &backoff_cap,
        "--concurrency",
        "64",
        "--stytch-rate-limit",
        "100",
        "--stytch-burst",
        "100",
        "--resync-interval",
        "1h",
    ];
    namespace.start_operator_named(fake, "operator", &args)
}

/// Makes each kind's objects fail on every call, edits every spec so that each object has an
/// update to make, and clears the faults after the plan's period.
async fn inject_faults(
    namespace: &TestNamespace,
    fake: &FakeStytch,
    desired: &mut [Desired],
    faults: &[Fault],
    plan: &Plan,
) -> FaultPeriod {
    let start = reliability::now_seconds();
    let rules: Vec<Value> = desired
        .iter()
        .enumerate()
        .map(|(index, object)| {
            let fault = faults[index / plan.objects_per_fault];
            json!({"operation": "any", "organization_id": object.organization_id,
                   "action": fault.action()})
        })
        .collect();
    fake.set_faults(Value::Array(rules)).await;
    edit_every_display_name(namespace, desired).await;
    tokio::time::sleep(plan.fault_period).await;
    fake.clear_faults().await;
    FaultPeriod {
        start,
        end: reliability::now_seconds(),
    }
}

/// Each fault kind's calls during the fault against its bound, and its recovery.
fn measure(
    calls: &[reliability::Call],
    desired: &[Desired],
    faults: &[Fault],
    plan: &Plan,
    period: FaultPeriod,
) -> Vec<Measured> {
    let cap = plan.backoff_cap_secs as f64;
    let per_object = calls_per_object(calls, desired, period);
    faults
        .iter()
        .enumerate()
        .map(|(kind, &fault)| {
            let objects = &desired[kind * plan.objects_per_fault..][..plan.objects_per_fault];
            let bound = attempts_bound(period.window(), cap, fault.floor_secs(cap), TOLERANCE);
            let most_of = |object: &Desired| per_object.get(&object.name).copied().unwrap_or(0);
            Measured {
                fault,
                bound,
                most: objects.iter().map(most_of).max().unwrap_or(0),
                over_bound: objects
                    .iter()
                    .filter(|object| most_of(object) > bound)
                    .map(|object| format!("{}: {} calls", object.name, most_of(object)))
                    .collect(),
                recovery: last_update_after(calls, objects, period.end),
            }
        })
        .collect()
}

fn bound_line(measured: &[Measured], period: FaultPeriod) -> String {
    let kinds: Vec<String> = measured
        .iter()
        .map(|m| format!("{} {} <= {}", m.fault.label(), m.most, m.bound))
        .collect();
    format!(
        "calls per object in any {:.0} s window during the fault, measured <= bound: {}",
        period.window(),
        kinds.join("; ")
    )
}

fn notes(
    measured: &[Measured],
    plan: &Plan,
    period: FaultPeriod,
    over_bound: &[String],
    lost: &[String],
) -> String {
    let recoveries: Vec<String> = measured
        .iter()
        .map(|m| format!("{} {}", m.fault.label(), seconds(m.recovery)))
        .collect();
    format!(
        "--backoff-cap {}s, base 1 s, full jitter; bound: most attempts that fit in the window \
         with probability above {TOLERANCE} per object; calls per minute = the most in any \
         {:.0} s window of the fault period; recovery is from clearing the faults to every \
         object converged (a call hung at that moment still waits out its 35 s timeout); \
         Stytch updated after clearing, by fault (s): {}; over the bound: {over_bound:?}; \
         still lost: {:?}",
        plan.backoff_cap_secs,
        period.window(),
        recoveries.join("; "),
        lost.iter().take(5).collect::<Vec<_>>()
    )
}

/// Edits every object's display name at once, so that each object has an update to make.
async fn edit_every_display_name(namespace: &TestNamespace, desired: &mut [Desired]) {
    futures::stream::iter(desired.iter_mut())
        .for_each_concurrent(16, |object| {
            let name = format!("{} during the fault", object.name);
            reliability::edit_display_name(namespace, object, name)
        })
        .await;
}

fn seconds(value: Option<f64>) -> String {
    value.map_or_else(|| "never".into(), |secs| format!("{secs:.1}"))
}

/// Seconds from `since` until the last of `objects` was updated in Stytch, if all were.
fn last_update_after(calls: &[reliability::Call], objects: &[Desired], since: f64) -> Option<f64> {
    objects
        .iter()
        .map(|object| {
            calls
                .iter()
                .filter(|c| c.method == "PUT" && c.status == 200 && c.at >= since)
                .find(|c| c.organization_id() == Some(object.organization_id.as_str()))
                .map(|c| c.at - since)
        })
        .try_fold(0.0, |latest: f64, at| Some(latest.max(at?)))
}

/// Per object (by name), the most calls in any window of the fault period.
fn calls_per_object(
    calls: &[reliability::Call],
    desired: &[Desired],
    period: FaultPeriod,
) -> HashMap<String, usize> {
    let object_of: HashMap<&str, &str> = desired
        .iter()
        .map(|object| (object.organization_id.as_str(), object.name.as_str()))
        .collect();
    let mut times: HashMap<&str, Vec<f64>> = HashMap::new();
    for call in calls
        .iter()
        .filter(|c| c.at >= period.start && c.at <= period.end)
    {
        if let Some(object) = call.organization_id().and_then(|org| object_of.get(org)) {
            times.entry(object).or_default().push(call.at);
        }
    }
    times
        .into_iter()
        .map(|(object, times)| {
            let most = reliability::max_in_window(&times, period.window());
            (object.to_owned(), most)
        })
        .collect()
}

/// The largest number of attempts that fit in `window` seconds with probability above
/// `tolerance`, when the waits follow `src/backoff.rs` with base 1 s, `cap`, and at least
/// `floor` between attempts. The chance is summed over every attempt the window may start at
/// (a union bound), since later attempts wait longer.
fn attempts_bound(window: f64, cap: f64, floor: f64, tolerance: f64) -> usize {
    let mut attempts = 1;
    loop {
        let next = attempts + 1;
        let chance: f64 = (1..=64)
            .map(|first| chance_within(window, cap, floor, first, next - 1))
            .sum();
        if chance <= tolerance {
            return attempts;
        }
        attempts = next;
    }
}

/// The chance that the `count` waits after failures `first`, `first + 1`, ... sum to at most
/// `window`. Each wait is `max(floor, U[0, c])` with `c = min(cap, base x 2^(k-1))`; the
/// distribution of the sum is carried as a cumulative distribution on a 10 ms grid.
fn chance_within(window: f64, cap: f64, floor: f64, first: u32, count: usize) -> f64 {
    const STEP: f64 = 0.01;
    let points = (window / STEP).round() as usize + 1;
    // The sum of no waits is 0: certainly within any x >= 0.
    let mut cdf = vec![1.0; points];
    for k in first..first + count as u32 {
        let ceiling = (BACKOFF_BASE_SECS * 2f64.powi(k as i32 - 1)).min(cap);
        cdf = add_wait(&cdf, STEP, ceiling, floor);
    }
    cdf[points - 1]
}

/// The cumulative distribution of `sum + max(floor, U[0, ceiling])`, given that of `sum`.
fn add_wait(cdf: &[f64], step: f64, ceiling: f64, floor: f64) -> Vec<f64> {
    let at = |x: f64| -> f64 {
        if x < 0.0 {
            0.0
        } else {
            cdf[((x / step).round() as usize).min(cdf.len() - 1)]
        }
    };
    if floor >= ceiling {
        return (0..cdf.len())
            .map(|i| at(i as f64 * step - floor))
            .collect();
    }
    // integral[i] = the integral of the previous cdf from 0 to i x step.
    let mut integral = vec![0.0; cdf.len()];
    for i in 1..cdf.len() {
        integral[i] = integral[i - 1] + (cdf[i - 1] + cdf[i]) * step / 2.0;
    }
    let integral_at = |x: f64| -> f64 {
        if x <= 0.0 {
            0.0
        } else {
            integral[((x / step).round() as usize).min(integral.len() - 1)]
        }
    };
    (0..cdf.len())
        .map(|i| {
            let x = i as f64 * step;
            let atom = floor / ceiling * at(x - floor);
            let spread = (integral_at(x - floor) - integral_at(x - ceiling)) / ceiling;
            atom + spread
        })
        .collect()
}

#[test]
fn a_deterministic_floor_gives_the_plain_count() {
    // 35 s apart, a 60 s window holds two attempts; 10 s apart, seven.
    assert_eq!(attempts_bound(60.0, 300.0, 35.0, 1e-6), 2);
    assert_eq!(attempts_bound(60.0, 5.0, 10.0, 1e-6), 7);
}

#[test]
fn the_bound_is_exceeded_rarely_by_a_simulated_backoff() {
    use rand::Rng;
    let (window, cap) = (60.0, 300.0);
    let bound = attempts_bound(window, cap, 0.0, 1e-3);
    let mut rng = rand::rng();
    let over = (0..20_000)
        .filter(|_| {
            let (mut time, mut attempts) = (0.0, 1);
            for k in 1.. {
                let ceiling = (2f64.powi(k - 1)).min(cap);
                time += rng.random_range(0.0..=ceiling);
                if time > window {
                    break;
                }
                attempts += 1;
            }
            attempts > bound
        })
        .count();
    assert!(over <= 20, "{over} of 20000 runs exceeded {bound}");
}
