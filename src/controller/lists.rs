//! One list of an organization's connections serves every object of that organization.
//!
//! Stytch has no call that reads one connection: observing a connection means listing its
//! organization. Without sharing, an organization of 100 objects costs 100 lists per resync;
//! with it, one. Objects of one organization resync together (see
//! [`crate::reconcile::until_next_tick`]), so a list made by the first of them is fresh for the
//! others.
//!
//! # Rules
//! - **Single flight.** Reconciles that need the same organization's list while one is being
//!   fetched wait for it and share its answer, success or failure: a Stytch outage costs one
//!   call per organization, not one per object.
//! - **Freshness.** A list is reused while it is younger than the caller's `max_age` (half the
//!   resync interval, so each resync tick lists again and drift made in Stytch is seen within
//!   one interval). A caller can insist on a list made after it asked (`Freshness::AfterNow`).
//! - **Own writes.** An update's answer replaces the connection in the shared list, so the next
//!   object does not see the old values and the next reconcile of this one does not repeat it.
//! - **Memory.** A list is dropped once no reconcile has used it for [`IDLE_KEEP`], or once it
//!   is past its age, so the operator holds an organization's connections only while its
//!   objects are being reconciled (around its resync tick), not for half the interval. Each
//!   connection sits behind its own `Arc`, so recording an update while other reconciles still
//!   read the list copies pointers, not the organization's connections.
//!
//! Lists are kept per caller (project, member session, organization as named), since what a
//! member session may see is not what project credentials may see.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::stytch::{ListConnectionsResponse, OidcConnection, StytchError};

/// Whose list of which organization: project id, a fingerprint of the member session (empty
/// without one), and the organization as the spec or session names it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ListKey {
    pub project_id: String,
    pub session_fingerprint: String,
    pub organization_id: String,
}

/// One answer of Stytch's list call.
#[derive(Clone, Debug)]
pub struct Listed {
    /// When the call was sent: the list shows Stytch as of this moment or later.
    pub at: Instant,
    pub request_id: String,
    pub connections: Vec<Arc<OidcConnection>>,
}

impl Listed {
    pub fn find(&self, connection_id: &str) -> Option<&OidcConnection> {
        self.connections
            .iter()
            .find(|connection| connection.connection_id == connection_id)
            .map(Arc::as_ref)
    }
}

/// How recent a list a reconcile accepts.
#[derive(Clone, Copy, Debug)]
pub enum Freshness {
    /// A list younger than this.
    MaxAge(Duration),
    /// A list sent after the reconcile asked: when a cached list may be too old, e.g. it does
    /// not have the connection, or the user asked for a fresh look.
    AfterNow,
}

/// The answer a reconcile gets; `fetched` says whether this reconcile made the call, so it
/// knows whether asking again could tell it more.
pub struct Answer {
    pub listed: Arc<Listed>,
    pub fetched: bool,
}

#[derive(Default)]
struct Slot {
    listed: Option<Arc<Listed>>,
    /// The last failure and when it came, handed to those who were waiting for it.
    failed: Option<(Instant, Arc<StytchError>)>,
    /// Until when the list is kept at all.
    keep_until: Option<Instant>,
}

#[derive(Default)]
pub struct ConnectionLists {
    slots: Mutex<HashMap<ListKey, Arc<tokio::sync::Mutex<Slot>>>>,
}

impl ConnectionLists {
    /// The organization's list, from a fresh enough earlier call or from `fetch`, which runs at
    /// most once at a time per key.
    pub async fn get<F, Fut>(
        &self,
        key: &ListKey,
        freshness: Freshness,
        fetch: F,
    ) -> Result<Answer, Arc<StytchError>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<ListConnectionsResponse, StytchError>>,
    {
        let asked_at = Instant::now();
        let slot = self.slot(key);
        let mut slot = slot.lock().await;
        let now = Instant::now();
        if let Some(listed) = &slot.listed {
            let fresh = match freshness {
                Freshness::MaxAge(max_age) => now.saturating_duration_since(listed.at) < max_age,
                Freshness::AfterNow => listed.at >= asked_at,
            };
            if fresh {
                let listed = listed.clone();
                slot.keep_until = Some(keep_until(listed.at, freshness, now));
                return Ok(Answer {
                    listed,
                    fetched: false,
                });
            }
        }
        if let Some((failed_at, error)) = &slot.failed
            && *failed_at >= asked_at
        {
            return Err(error.clone());
        }

        let sent_at = Instant::now();
        match fetch().await {
            Ok(response) => {
                let listed = Arc::new(Listed {
                    at: sent_at,
                    request_id: response.request_id,
                    connections: response
                        .oidc_connections
                        .into_iter()
                        .map(Arc::new)
                        .collect(),
                });
                slot.listed = Some(listed.clone());
                slot.failed = None;
                slot.keep_until = Some(keep_until(sent_at, freshness, Instant::now()));
                Ok(Answer {
                    listed,
                    fetched: true,
                })
            }
            Err(error) => {
                let error = Arc::new(error);
                slot.failed = Some((Instant::now(), error.clone()));
                Err(error)
            }
        }
    }

    /// Puts Stytch's answer to an update in place of the connection's listed values.
    pub async fn record_update(&self, key: &ListKey, connection: &OidcConnection) {
        let slot = self.slot(key);
        let mut slot = slot.lock().await;
        if let Some(listed) = &mut slot.listed {
            let listed = Arc::make_mut(listed);
            if let Some(old) = listed
                .connections
                .iter_mut()
                .find(|old| old.connection_id == connection.connection_id)
            {
                *old = Arc::new(connection.clone());
            }
        }
    }

    /// Forgets the organization's list, after an answer that says it is out of date.
    pub async fn forget(&self, key: &ListKey) {
        let slot = self.slot(key);
        let mut slot = slot.lock().await;
        slot.listed = None;
        slot.keep_until = None;
    }

    /// The key's slot; drops lists past their keeping time on the way, except those in use.
    ///
    /// A slot is in use while a reconcile holds it, locked or still waiting for the lock: one
    /// dropped between a reconcile taking it and locking it would let the next reconcile of
    /// the organization create a second slot and list again.
    fn slot(&self, key: &ListKey) -> Arc<tokio::sync::Mutex<Slot>> {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        slots.retain(|_, slot| {
            if Arc::strong_count(slot) > 1 {
                return true;
            }
            let Ok(slot) = slot.try_lock() else {
                return true;
            };
            slot.keep_until.is_some_and(|until| until > now)
                || slot
                    .failed
                    .as_ref()
                    .is_some_and(|(at, _)| *at + MIN_KEEP > now)
        });
        slots.entry(key.clone()).or_default().clone()
    }

    /// Organizations whose list is held now.
    #[cfg(test)]
    fn held(&self) -> usize {
        self.slots.lock().unwrap().len()
    }
}

/// Until when a list made at `listed_at` is kept, as of a use at `now`: [`IDLE_KEEP`] after its
/// last use, no longer than it may be reused, and at least [`MIN_KEEP`] after it was made.
fn keep_until(listed_at: Instant, freshness: Freshness, now: Instant) -> Instant {
    let reusable_until = match freshness {
        Freshness::MaxAge(max_age) => listed_at + max_age,
        Freshness::AfterNow => listed_at,
    };
    (now + IDLE_KEEP)
        .min(reusable_until)
        .max(listed_at + MIN_KEEP)
}

/// Lists are kept at least this long, so reconciles queued behind the one that listed still
/// find the answer when `max_age` is short.
const MIN_KEEP: Duration = Duration::from_secs(1);

/// A list no reconcile has used for this long is dropped. The objects of an organization
/// reconcile together at their tick, one after another within a few seconds at most; a list
/// kept longer would only hold memory until the next tick, which lists again anyway.
const IDLE_KEEP: Duration = Duration::from_secs(5);

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn key(organization: &str) -> ListKey {
        ListKey {
            project_id: "project-test-1".into(),
            session_fingerprint: String::new(),
            organization_id: organization.into(),
        }
    }

    fn connection(id: &str, display_name: &str) -> OidcConnection {
        serde_json::from_value(serde_json::json!({
            "connection_id": id,
            "organization_id": "organization-test-1",
            "display_name": display_name,
            "status": "active",
        }))
        .unwrap()
    }

    fn response(request_id: &str) -> ListConnectionsResponse {
        serde_json::from_value(serde_json::json!({
            "request_id": request_id,
            "status_code": 200,
            "saml_connections": [],
            "oidc_connections": [
                {"connection_id": "c1", "organization_id": "organization-test-1",
                 "display_name": "one", "status": "active"},
            ],
            "external_connections": [],
        }))
        .unwrap()
    }

    fn unavailable() -> StytchError {
        StytchError::Api {
            status: reqwest::StatusCode::SERVICE_UNAVAILABLE,
            error_type: "service_unavailable".into(),
            message: "try later".into(),
            request_id: "request-id-failed".into(),
            retry_after: None,
        }
    }

    const FRESH: Freshness = Freshness::MaxAge(Duration::from_secs(60));

    #[tokio::test]
    async fn concurrent_reconciles_of_one_organization_share_one_list() {
        let lists = Arc::new(ConnectionLists::default());
        let calls = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let (lists, calls) = (lists.clone(), calls.clone());
                tokio::spawn(async move {
                    let fetch = || async {
                        calls.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        Ok(response("request-id-1"))
                    };
                    lists.get(&key("org-a"), FRESH, fetch).await.ok().unwrap()
                })
            })
            .collect();
        for task in tasks {
            let answer = task.await.unwrap();
            assert_eq!(answer.listed.request_id, "request-id-1");
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn organizations_and_callers_do_not_share_lists() {
        let lists = ConnectionLists::default();
        let calls = AtomicUsize::new(0);
        let fetch = || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Ok(response("request-id"))
        };
        let mut other_caller = key("org-a");
        other_caller.session_fingerprint = "abc".into();
        for key in [key("org-a"), key("org-b"), other_caller] {
            lists.get(&key, FRESH, fetch).await.ok().unwrap();
        }
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_list_older_than_max_age_or_the_request_is_made_again() {
        let lists = ConnectionLists::default();
        let calls = AtomicUsize::new(0);
        let fetch = || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Ok(response("request-id"))
        };
        let first = lists.get(&key("org-a"), FRESH, fetch).await.ok().unwrap();
        assert!(first.fetched);
        let reused = lists.get(&key("org-a"), FRESH, fetch).await.ok().unwrap();
        assert!(!reused.fetched);
        tokio::time::sleep(Duration::from_millis(5)).await;
        let short = Freshness::MaxAge(Duration::from_millis(1));
        assert!(
            lists
                .get(&key("org-a"), short, fetch)
                .await
                .ok()
                .unwrap()
                .fetched
        );
        let after = lists.get(&key("org-a"), Freshness::AfterNow, fetch).await;
        assert!(after.ok().unwrap().fetched);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_failure_reaches_those_who_waited_for_it_but_not_later_callers() {
        let lists = Arc::new(ConnectionLists::default());
        let calls = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..10)
            .map(|_| {
                let (lists, calls) = (lists.clone(), calls.clone());
                tokio::spawn(async move {
                    let fetch = || async {
                        calls.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        Err(unavailable())
                    };
                    lists.get(&key("org-a"), FRESH, fetch).await.err().unwrap()
                })
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await.unwrap().error_type(), "service_unavailable");
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        let fetch = || async { Ok(response("request-id-2")) };
        let later = lists.get(&key("org-a"), FRESH, fetch).await.ok().unwrap();
        assert_eq!(later.listed.request_id, "request-id-2");
    }

    #[tokio::test]
    async fn an_update_replaces_the_listed_connection() {
        let lists = ConnectionLists::default();
        let fetch = || async { Ok(response("request-id")) };
        lists.get(&key("org-a"), FRESH, fetch).await.ok().unwrap();
        lists
            .record_update(&key("org-a"), &connection("c1", "renamed"))
            .await;
        let answer = lists.get(&key("org-a"), FRESH, fetch).await.ok().unwrap();
        assert_eq!(answer.listed.find("c1").unwrap().display_name, "renamed");

        lists.forget(&key("org-a")).await;
        let answer = lists.get(&key("org-a"), FRESH, fetch).await.ok().unwrap();
        assert!(answer.fetched);
    }

    #[tokio::test]
    async fn a_slot_taken_but_not_yet_locked_is_not_dropped_for_another_organization() {
        let lists = ConnectionLists::default();
        let taken = lists.slot(&key("org-a"));
        // Another organization's reconcile sweeps the map before the first one locks its slot.
        lists.slot(&key("org-b"));
        let again = lists.slot(&key("org-a"));
        assert!(
            Arc::ptr_eq(&taken, &again),
            "a second slot for org-a would mean a second list"
        );
    }

    #[test]
    fn a_list_is_kept_a_while_after_its_last_use_but_never_past_its_age() {
        let made = Instant::now();
        let minute = Freshness::MaxAge(Duration::from_secs(60));
        assert_eq!(keep_until(made, minute, made), made + IDLE_KEEP);
        let later = made + Duration::from_secs(20);
        assert_eq!(keep_until(made, minute, later), later + IDLE_KEEP);
        let near_its_age = made + Duration::from_secs(58);
        assert_eq!(
            keep_until(made, minute, near_its_age),
            made + Duration::from_secs(60)
        );
        assert_eq!(keep_until(made, Freshness::AfterNow, made), made + MIN_KEEP);
    }

    #[tokio::test]
    async fn lists_past_their_keeping_time_are_dropped() {
        let lists = ConnectionLists::default();
        let fetch = || async { Ok(response("request-id")) };
        let brief = Freshness::MaxAge(Duration::from_millis(1));
        lists.get(&key("org-a"), brief, fetch).await.ok().unwrap();
        lists.get(&key("org-b"), FRESH, fetch).await.ok().unwrap();
        assert_eq!(lists.held(), 2);
        tokio::time::sleep(MIN_KEEP + Duration::from_millis(50)).await;
        lists.get(&key("org-c"), FRESH, fetch).await.ok().unwrap();
        assert_eq!(
            lists.held(),
            2,
            "org-a's list is dropped, org-b's and org-c's kept"
        );
    }
}
