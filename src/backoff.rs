//! Per-object exponential backoff with full jitter.
//!
//! Each failing object waits a random time between zero and `min(cap, base * 2^attempt)`
//! ("full jitter"), so objects that failed together do not retry together. A server's
//! `Retry-After` is a floor. A success forgets the object's failures. (The `backon` crate that
//! kube-runtime uses adds jitter on top of the delay instead of drawing the whole delay, so the
//! few lines of arithmetic live here.)

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::Duration;

use rand::Rng;

#[derive(Debug)]
pub struct Backoff<K> {
    base: Duration,
    cap: Duration,
    attempts: Mutex<HashMap<K, u32>>,
}

impl<K: Eq + Hash> Backoff<K> {
    pub fn new(base: Duration, cap: Duration) -> Self {
        Self {
            base,
            cap,
            attempts: Mutex::new(HashMap::new()),
        }
    }

    /// The delay before the next attempt for `key`, counting this failure.
    pub fn next_delay(&self, key: K, retry_after: Option<Duration>) -> Duration {
        let attempt = {
            let mut attempts = self.attempts.lock().unwrap_or_else(|e| e.into_inner());
            let attempt = attempts.entry(key).or_insert(0);
            *attempt = attempt.saturating_add(1);
            *attempt
        };
        let ceiling = self.ceiling(attempt);
        let drawn = rand::rng().random_range(Duration::ZERO..=ceiling);
        drawn.max(retry_after.unwrap_or_default().min(self.cap))
    }

    /// Forgets `key`'s failures after a success.
    pub fn reset(&self, key: &K) {
        self.attempts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }

    /// `min(cap, base * 2^(attempt-1))`.
    fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(30));
        self.base.saturating_mul(factor).min(self.cap)
    }
}

/// How long a watch of the Kubernetes API (and the controller reading the watches) waits
/// before it tries again after an error: full jitter from 0.5 s up to 5 s. kube-runtime's
/// default (client-go's: up to 30 s, plus up to as much again of jitter) made edits wait a
/// minute or more after an API server returned, since the first answers of a restarted API
/// server are errors too (a watch from an old resourceVersion is refused, and the watch must
/// list again). The load this adds is a few requests a minute per watch while the API server
/// is down.
pub struct WatchBackoff(Backoff<()>);

impl Default for WatchBackoff {
    fn default() -> Self {
        Self(Backoff::new(
            Duration::from_millis(500),
            Duration::from_secs(5),
        ))
    }
}

impl Iterator for WatchBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        Some(self.0.next_delay((), None))
    }
}

impl kube::runtime::utils::Backoff for WatchBackoff {
    fn reset(&mut self) {
        self.0.reset(&());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_never_exceed_the_doubling_ceiling_or_the_cap() {
        let backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        for attempt in 1..=40u32 {
            let delay = backoff.next_delay("a", None);
            let ceiling =
                Duration::from_secs(2u64.pow(attempt.min(7) - 1)).min(Duration::from_secs(60));
            assert!(
                delay <= ceiling,
                "attempt {attempt}: {delay:?} > {ceiling:?}"
            );
        }
    }

    #[test]
    fn retry_after_is_a_floor_up_to_the_cap() {
        let backoff = Backoff::new(Duration::from_millis(10), Duration::from_secs(60));
        let delay = backoff.next_delay("a", Some(Duration::from_secs(5)));
        assert!(delay >= Duration::from_secs(5));
        let delay = backoff.next_delay("a", Some(Duration::from_secs(3600)));
        assert_eq!(delay, Duration::from_secs(60));
    }

    #[test]
    fn a_reset_starts_over_from_the_base() {
        let backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(600));
        for _ in 0..10 {
            backoff.next_delay("a", None);
        }
        backoff.reset(&"a");
        assert!(backoff.next_delay("a", None) <= Duration::from_secs(1));
    }

    #[test]
    fn a_watch_retries_within_five_seconds_and_starts_over_after_a_success() {
        use kube::runtime::utils::Backoff as _;
        let mut backoff = WatchBackoff::default();
        let delays: Vec<Duration> = backoff.by_ref().take(20).collect();
        assert!(
            delays.iter().all(|d| *d <= Duration::from_secs(5)),
            "{delays:?}"
        );
        backoff.reset();
        assert!(backoff.next().unwrap() <= Duration::from_millis(500));
    }

    #[test]
    fn objects_back_off_independently() {
        let backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(600));
        for _ in 0..10 {
            backoff.next_delay("a", None);
        }
        assert!(backoff.next_delay("b", None) <= Duration::from_secs(1));
    }
}
