//! Reliability: the operator is killed with SIGKILL at random moments while it converges many
//! objects, and restarted at once each time. While it is down, a few specs are edited. In the
//! end every connection in the fake Stytch equals its spec, every status describes the current
//! generation, and the number of updates stays within a bound derived below.
//!
//! # The bound on updates
//! Every object needs one update (the seeded connections differ from every spec), and each
//! edit at most one more. A kill can cost more only for reconciles in flight: an update that
//! reached Stytch whose status was never written. The restarted operator then sees the fields
//! already right, but not which client secret was sent (Stytch never shows it back, so the
//! status is the only record), and sends the secret again. At most `--concurrency` reconciles
//! run at once, so: updates <= objects + edits + kills x concurrency.

mod support;

use std::time::{Duration, Instant};

use rand::Rng;
use rand::rngs::StdRng;
use support::reliability::{self, Desired, Fragment, Profile, StytchCalls};
use support::*;

const SCENARIO: &str = "crashes";
const CLIENT_SECRET: &str = "SENTINEL-CLIENT-SECRET-crashes-5f0c2a91";
const CONCURRENCY: usize = 16;
const CONNECTIONS_PER_ORGANIZATION: usize = 20;

/// The sizes of one profile.
struct Plan {
    objects: usize,
    kills: usize,
    /// How long the operator runs before each kill: drawn from this range, in milliseconds.
    run_ms: (u64, u64),
    /// Objects edited while the operator is down, at each kill.
    edits_per_kill: usize,
    /// `--stytch-rate-limit` and `--stytch-burst`: sets the pace of convergence, so that the
    /// kills fall while it is under way.
    stytch_rate: &'static str,
    convergence_timeout: Duration,
}

impl Plan {
    fn for_profile(profile: Profile) -> Self {
        profile.pick(
            Self {
                objects: 100,
                kills: 5,
                // Convergence takes about 10 s at this pace (each restart adds a burst), and
                // three kills come within 4.5 s of running: most fall during convergence.
                run_ms: (300, 1500),
                edits_per_kill: 3,
                stytch_rate: "10",
                convergence_timeout: Duration::from_secs(40),
            },
            Self {
                objects: 1000,
                kills: 20,
                run_ms: (1000, 8000),
                edits_per_kill: 10,
                // About 1,050 calls at 10 a second: convergence takes some 100 s, as long as
                // the 20 runs between kills (4.5 s on average). At 50 a second, with one list
                // per organization, it was over after the fifth kill.
                stytch_rate: "10",
                convergence_timeout: Duration::from_secs(300),
            },
        )
    }
}

/// What the kills did: when each came (seconds after the first start) and how many connections
/// Stytch had updated by then, and how many specs were edited meanwhile.
struct Chaos {
    kills: Vec<(f64, usize)>,
    edits: usize,
}

impl Chaos {
    /// Kills that came while some connection still awaited its first update.
    fn during_convergence(&self, objects: usize) -> usize {
        self.kills
            .iter()
            .filter(|(_, updated)| *updated < objects)
            .count()
    }

    fn describe(&self, objects: usize) -> String {
        let kills: Vec<String> = self
            .kills
            .iter()
            .map(|(at, updated)| format!("{at:.1}s ({updated}/{objects} updated)"))
            .collect();
        kills.join(", ")
    }
}

#[tokio::test]
async fn killing_the_operator_during_convergence_loses_no_update() {
    let profile = Profile::from_env();
    let plan = Plan::for_profile(profile);
    let (seed, mut rng) = reliability::seeded_rng(SCENARIO);
    let namespace = TestNamespace::with_client_secret("rel-crashes", CLIENT_SECRET).await;
    let mut desired = Desired::many(plan.objects, CONNECTIONS_PER_ORGANIZATION);
    let fake = FakeStytch::start_with_seed(&namespace.name, reliability::seed(&desired)).await;
    reliability::create_objects(&namespace, &desired).await;

    let (_operator, chaos) =
        kill_repeatedly(&namespace, &fake, &mut desired, &plan, &mut rng).await;
    let outcome = reliability::wait_for_convergence(
        &namespace,
        &fake,
        &desired,
        CLIENT_SECRET,
        plan.convergence_timeout,
    )
    .await;

    let counts = StytchCalls::of(&reliability::calls(&fake).await);
    let (objects, edits, kills) = (plan.objects, chaos.edits, plan.kills);
    let bound = objects + edits + kills * CONCURRENCY;
    let recovery = outcome.as_ref().ok().map(Duration::as_secs_f64);
    let lost = outcome.err().unwrap_or_default();
    // Kills after convergence would prove little; most must fall while it is under way.
    let during = chaos.during_convergence(objects);
    let telling = during * 2 > kills;
    let fragment = Fragment {
        scenario: SCENARIO.into(),
        profile,
        faults_injected: vec![format!(
            "{kills} x kill -9 of the operator during convergence, restarted at once"
        )],
        objects,
        updates_lost: lost.len(),
        max_calls_per_object_per_minute: None,
        bound: format!(
            "updates <= objects + edits + kills x concurrency = {objects} + {edits} + {kills} x \
             {CONCURRENCY} = {bound}; measured {}",
            counts.put
        ),
        recovery_seconds: recovery,
        stytch_calls: counts,
        passed: lost.is_empty() && counts.put <= bound && telling,
        notes: format!(
            "seed {seed}; --stytch-rate-limit and --stytch-burst {}; {edits} spec edits made \
             while the operator was down; {during} of {kills} kills during convergence, at {}; \
             recovery is from the last restart to every object converged; {} updates beyond \
             one per object and edit; first objects still lost: {:?}",
            plan.stytch_rate,
            chaos.describe(objects),
            counts.put.saturating_sub(objects + edits),
            lost.iter().take(5).collect::<Vec<_>>()
        ),
    };
    fragment.write();

    assert!(lost.is_empty(), "updates lost: {lost:?}");
    assert!(
        telling,
        "only {during} of {kills} kills came during convergence: {}",
        chaos.describe(objects)
    );
    assert!(
        counts.put <= bound,
        "{} updates, over the bound {bound}",
        counts.put
    );
}

/// Runs the operator, and kills and restarts it `plan.kills` times at random moments, editing
/// a few specs each time while it is down. Returns the last operator, still running.
async fn kill_repeatedly(
    namespace: &TestNamespace,
    fake: &FakeStytch,
    desired: &mut [Desired],
    plan: &Plan,
    rng: &mut StdRng,
) -> (Operator, Chaos) {
    let concurrency = CONCURRENCY.to_string();
    // The resync is long, so that no resync adds calls.
    let args = [
        "--concurrency",
        &concurrency,
        "--stytch-rate-limit",
        plan.stytch_rate,
        "--stytch-burst",
        plan.stytch_rate,
        "--resync-interval",
        "1h",
    ];
    let mut operator = namespace.start_operator_named(fake, "operator-0", &args);
    let started = Instant::now();
    let mut chaos = Chaos {
        kills: Vec::new(),
        edits: 0,
    };
    for kill in 1..=plan.kills {
        let run = rng.random_range(plan.run_ms.0..=plan.run_ms.1);
        tokio::time::sleep(Duration::from_millis(run)).await;
        operator.kill();
        let updated = updated_connections(fake).await;
        chaos.kills.push((started.elapsed().as_secs_f64(), updated));
        chaos.edits += edit_some(namespace, desired, rng, plan.edits_per_kill, kill).await;
        operator = namespace.start_operator_named(fake, &format!("operator-{kill}"), &args);
    }
    (operator, chaos)
}

/// Connections updated at least once so far, to show the kills came during convergence.
async fn updated_connections(fake: &FakeStytch) -> usize {
    let calls = reliability::calls(fake).await;
    let updated: std::collections::HashSet<&str> = calls
        .iter()
        .filter(|call| call.method == "PUT" && call.status == 200)
        .filter_map(|call| call.connection_id())
        .collect();
    updated.len()
}

/// Edits the display name of `count` random objects; returns how many edits were made.
async fn edit_some(
    namespace: &TestNamespace,
    desired: &mut [Desired],
    rng: &mut StdRng,
    count: usize,
    round: usize,
) -> usize {
    for _ in 0..count {
        let index = rng.random_range(0..desired.len());
        let name = format!("Object {index} v{round}");
        reliability::edit_display_name(namespace, &mut desired[index], name).await;
    }
    count
}
