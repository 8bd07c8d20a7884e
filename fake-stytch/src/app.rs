//! The state shared by the Stytch API and the admin API.
//!
//! Every lock here is a plain mutex held for a few field updates and never across an `.await`:
//! handlers copy what they need out, do their slow work (discovery, latency), then lock again.

use std::{
    sync::{
        Mutex, MutexGuard, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use crate::{
    calllog::CallLog, discovery::Discovery, faults::FaultRules, ratelimit::RateLimiter,
    state::Store,
};

pub struct App {
    /// `http://HOST:PORT` of the Stytch API, used in redirect URLs.
    pub api_url: String,
    pub discovery: Discovery,
    pub calls: CallLog,
    store: Mutex<Store>,
    faults: Mutex<FaultRules>,
    rate_limiter: Mutex<RateLimiter>,
    latency_ms: AtomicU64,
}

impl App {
    pub fn new(
        api_url: String,
        discovery: Discovery,
        store: Store,
        latency: Duration,
        call_log_capacity: usize,
    ) -> Self {
        Self {
            api_url,
            discovery,
            calls: CallLog::new(call_log_capacity),
            store: Mutex::new(store),
            faults: Mutex::new(FaultRules::default()),
            rate_limiter: Mutex::new(RateLimiter::default()),
            latency_ms: AtomicU64::new(saturating_millis(latency)),
        }
    }

    pub fn store(&self) -> MutexGuard<'_, Store> {
        lock(&self.store)
    }

    pub fn faults(&self) -> MutexGuard<'_, FaultRules> {
        lock(&self.faults)
    }

    pub fn rate_limiter(&self) -> MutexGuard<'_, RateLimiter> {
        lock(&self.rate_limiter)
    }

    /// The latency added to every Stytch API call.
    pub fn latency(&self) -> Duration {
        Duration::from_millis(self.latency_ms.load(Ordering::Relaxed))
    }

    pub fn set_latency(&self, latency: Duration) {
        self.latency_ms
            .store(saturating_millis(latency), Ordering::Relaxed);
    }
}

/// A panic in one request must not wedge the fake for the rest of a test run: the data behind
/// a poisoned lock is still consistent, since no code path panics halfway through an update.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn saturating_millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Milliseconds since the Unix epoch, the clock of fault rules' `until_ms`.
pub fn now_ms() -> u64 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    saturating_millis(since_epoch)
}
