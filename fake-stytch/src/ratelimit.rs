//! A token-bucket rate limit per project, for benchmarks that need to see 429s.
//!
//! Stytch publishes no numbers for its limits, so the fake has none until a test sets one
//! through `/_fake/rate-limit`. Each project id gets its own bucket of `burst` tokens refilled
//! at `requests_per_second`.

use std::{collections::HashMap, time::Instant};

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    pub requests_per_second: f64,
    /// Defaults to `requests_per_second` rounded up, at least 1.
    #[serde(default)]
    pub burst: Option<u32>,
}

impl RateLimit {
    pub fn validate(&self) -> Result<(), String> {
        if !(self.requests_per_second.is_finite() && self.requests_per_second > 0.0) {
            return Err("requests_per_second must be a positive number".into());
        }
        if self.burst == Some(0) {
            return Err("burst must be at least 1".into());
        }
        Ok(())
    }

    fn capacity(&self) -> f64 {
        match self.burst {
            Some(burst) => f64::from(burst),
            None => self.requests_per_second.ceil().max(1.0),
        }
    }
}

#[derive(Debug, Default)]
pub struct RateLimiter {
    limit: Option<RateLimit>,
    buckets: HashMap<String, Bucket>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    refilled_at: Instant,
}

impl RateLimiter {
    pub fn limit(&self) -> Option<RateLimit> {
        self.limit
    }

    /// Sets or removes the limit; every project starts again with a full bucket.
    pub fn set(&mut self, limit: Option<RateLimit>) {
        self.limit = limit;
        self.buckets.clear();
    }

    /// Takes one token from the project's bucket; false when the project is over the limit.
    pub fn try_acquire(&mut self, project_id: &str, now: Instant) -> bool {
        let Some(limit) = self.limit else {
            return true;
        };

        let capacity = limit.capacity();
        let bucket = self.buckets.entry(project_id.to_owned()).or_insert(Bucket {
            tokens: capacity,
            refilled_at: now,
        });

        let elapsed = now
            .saturating_duration_since(bucket.refilled_at)
            .as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * limit.requests_per_second).min(capacity);
        bucket.refilled_at = now;

        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn limiter(requests_per_second: f64, burst: u32) -> RateLimiter {
        let mut limiter = RateLimiter::default();
        limiter.set(Some(RateLimit {
            requests_per_second,
            burst: Some(burst),
        }));
        limiter
    }

    #[test]
    fn without_a_limit_every_call_passes() {
        let mut limiter = RateLimiter::default();
        let now = Instant::now();
        assert!((0..1000).all(|_| limiter.try_acquire("p", now)));
    }

    #[test]
    fn a_burst_passes_and_the_next_call_is_refused_until_tokens_refill() {
        let mut limiter = limiter(10.0, 3);
        let start = Instant::now();

        assert!((0..3).all(|_| limiter.try_acquire("p", start)));
        assert!(!limiter.try_acquire("p", start));
        assert!(limiter.try_acquire("p", start + Duration::from_millis(100)));
    }

    #[test]
    fn each_project_has_its_own_bucket() {
        let mut limiter = limiter(1.0, 1);
        let now = Instant::now();

        assert!(limiter.try_acquire("a", now));
        assert!(!limiter.try_acquire("a", now));
        assert!(limiter.try_acquire("b", now));
    }
}
