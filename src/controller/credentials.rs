//! Project credentials read recently, by Secret, so that the reconciles of a resync do not
//! each GET the same credentials Secret: at 10,000 objects that was 10,000 reads of one Secret
//! per resync interval, a quarter of the operator's requests to the API server.
//!
//! A Secret's entry is forgotten as soon as the Secret metadata watch reports a change of that
//! Secret, before the reconciles the change triggers run, and in any case after
//! [`MAX_AGE`], which bounds how long a missed watch event could keep an old value. A read
//! that started before a change was reported is not kept, so it cannot put back the value the
//! change replaced. Only credentials read successfully are kept: a missing or incomplete
//! Secret is read again by every reconcile until it is fixed.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::stytch::ProjectCredentials;

/// The longest a read is used without reading the Secret again.
pub const MAX_AGE: Duration = Duration::from_secs(60);

/// Credentials by the Secret they were read from (`namespace/name`).
#[derive(Debug, Default)]
pub struct CredentialsCache(Mutex<State>);

#[derive(Debug, Default)]
struct State {
    entries: HashMap<(String, String), (Instant, ProjectCredentials)>,
    /// Counts reported changes; a read is kept only if none came while it was in flight.
    changes: u64,
}

/// Taken before reading a Secret, given back with what was read.
#[derive(Clone, Copy, Debug)]
pub struct ReadTicket(u64);

impl CredentialsCache {
    /// The credentials read from `namespace/name` within [`MAX_AGE`], if any; otherwise a
    /// ticket for keeping the read that follows.
    pub fn get(&self, namespace: &str, name: &str) -> Result<ProjectCredentials, ReadTicket> {
        self.get_at(namespace, name, Instant::now())
    }

    fn get_at(
        &self,
        namespace: &str,
        name: &str,
        now: Instant,
    ) -> Result<ProjectCredentials, ReadTicket> {
        let state = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match state.entries.get(&(namespace.to_owned(), name.to_owned())) {
            Some((read_at, credentials)) if now.duration_since(*read_at) < MAX_AGE => {
                Ok(credentials.clone())
            }
            _ => Err(ReadTicket(state.changes)),
        }
    }

    /// Keeps what was read, unless a change was reported since `ticket` was taken.
    pub fn keep(
        &self,
        ticket: ReadTicket,
        namespace: &str,
        name: &str,
        credentials: &ProjectCredentials,
    ) {
        self.keep_at(ticket, namespace, name, credentials, Instant::now());
    }

    fn keep_at(
        &self,
        ticket: ReadTicket,
        namespace: &str,
        name: &str,
        credentials: &ProjectCredentials,
        now: Instant,
    ) {
        let mut state = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if state.changes == ticket.0 {
            let key = (namespace.to_owned(), name.to_owned());
            state.entries.insert(key, (now, credentials.clone()));
        }
    }

    /// The Secret `namespace/name` changed (or was deleted, or may have): read it again.
    pub fn forget(&self, namespace: &str, name: &str) {
        let mut state = self.0.lock().unwrap_or_else(|e| e.into_inner());
        state.changes = state.changes.wrapping_add(1);
        state
            .entries
            .remove(&(namespace.to_owned(), name.to_owned()));
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    fn credentials(secret: &str) -> ProjectCredentials {
        ProjectCredentials {
            project_id: "project-test-1".into(),
            secret: secret.into(),
        }
    }

    fn secret_of(read: Result<ProjectCredentials, ReadTicket>) -> Option<String> {
        read.ok().map(|c| c.secret.expose_secret().to_owned())
    }

    #[test]
    fn a_read_is_used_until_the_secret_changes() {
        let cache = CredentialsCache::default();
        let ticket = cache.get("ops", "stytch").unwrap_err();
        cache.keep(ticket, "ops", "stytch", &credentials("first"));
        assert_eq!(
            secret_of(cache.get("ops", "stytch")).as_deref(),
            Some("first")
        );
        assert!(cache.get("ops", "other").is_err());
        assert!(cache.get("other", "stytch").is_err());

        cache.forget("ops", "stytch");
        assert!(cache.get("ops", "stytch").is_err());
    }

    #[test]
    fn a_read_that_began_before_a_change_is_not_kept() {
        let cache = CredentialsCache::default();
        let before_change = cache.get("ops", "stytch").unwrap_err();
        cache.forget("ops", "stytch");
        cache.keep(before_change, "ops", "stytch", &credentials("replaced"));
        assert!(cache.get("ops", "stytch").is_err());

        let after_change = cache.get("ops", "stytch").unwrap_err();
        cache.keep(after_change, "ops", "stytch", &credentials("current"));
        assert_eq!(
            secret_of(cache.get("ops", "stytch")).as_deref(),
            Some("current")
        );
    }

    #[test]
    fn a_read_is_read_again_after_max_age() {
        let cache = CredentialsCache::default();
        let read_at = Instant::now();
        let ticket = cache.get_at("ops", "stytch", read_at).unwrap_err();
        cache.keep_at(ticket, "ops", "stytch", &credentials("old"), read_at);
        let just_before = read_at + MAX_AGE - Duration::from_millis(1);
        assert!(cache.get_at("ops", "stytch", just_before).is_ok());
        assert!(cache.get_at("ops", "stytch", read_at + MAX_AGE).is_err());
    }
}
