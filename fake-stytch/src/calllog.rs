//! The log of every call made to the Stytch API, which tests read to check what the operator
//! sent.
//!
//! Entries are numbered when they are appended, not when their request arrived, so that
//! `since=SEQ` never skips an entry that finished late. The log keeps the most recent
//! `capacity` entries, so a long benchmark cannot exhaust memory. Request bodies are stored with
//! every `client_secret`, `session_token` and `session_jwt` already replaced by its fingerprint,
//! and a member-session header only by its kind and fingerprint: the raw secret is never kept.

use std::{collections::VecDeque, sync::Mutex};

use serde::Serialize;
use serde_json::Value;

/// One call as it is recorded, before it gets its sequence number.
#[derive(Clone, Debug, Serialize)]
pub struct Call {
    /// RFC 3339 time at which the request arrived.
    pub time: String,
    pub method: String,
    /// The path as sent, still percent-encoded.
    pub path: String,
    pub query: Option<String>,
    /// The Basic-auth user the caller presented, whether or not it authenticated.
    pub project_id: Option<String>,
    /// The JSON body with secrets redacted, `null` when there was none.
    pub body: Value,
    /// Which member-session header was sent: `token` (`X-Stytch-Member-Session`), `jwt`
    /// (`X-Stytch-Member-SessionJWT`), `both`, or `None`.
    pub member_session: Option<&'static str>,
    /// The fingerprint of the header's value; `None` when no header or both were sent.
    pub member_session_fingerprint: Option<String>,
    /// The HTTP status sent, or 0 when the call hung or was dropped.
    pub status: u16,
    pub request_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_type: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Entry {
    pub seq: u64,
    #[serde(flatten)]
    pub call: Call,
}

pub struct CallLog {
    inner: Mutex<Inner>,
}

struct Inner {
    entries: VecDeque<Entry>,
    last_seq: u64,
    capacity: usize,
}

impl CallLog {
    pub fn new(capacity: usize) -> Self {
        let inner = Inner {
            entries: VecDeque::new(),
            last_seq: 0,
            capacity: capacity.max(1),
        };
        Self {
            inner: Mutex::new(inner),
        }
    }

    /// Appends a call and returns its sequence number, starting at 1.
    pub fn append(&self, call: Call) -> u64 {
        let mut inner = self.lock();
        inner.last_seq += 1;
        let seq = inner.last_seq;
        if inner.entries.len() == inner.capacity {
            inner.entries.pop_front();
        }
        inner.entries.push_back(Entry { seq, call });
        seq
    }

    /// The entries whose sequence number is above `since` (all of them for `None`), in order.
    pub fn entries(&self, since: Option<u64>) -> Vec<Entry> {
        let since = since.unwrap_or(0);
        self.lock()
            .entries
            .iter()
            .filter(|entry| entry.seq > since)
            .cloned()
            .collect()
    }

    /// Forgets every entry. Numbering goes on where it was, so a test's `since` stays valid.
    pub fn clear(&self) {
        self.lock().entries.clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(path: &str) -> Call {
        Call {
            time: "2025-01-01T00:00:00Z".into(),
            method: "GET".into(),
            path: path.into(),
            query: None,
            project_id: None,
            body: Value::Null,
            member_session: None,
            member_session_fingerprint: None,
            status: 200,
            request_id: "request-id-test-x".into(),
            error_type: None,
        }
    }

    #[test]
    fn since_returns_only_later_entries_in_order() {
        let log = CallLog::new(10);
        for path in ["/a", "/b", "/c"] {
            log.append(call(path));
        }

        let later: Vec<_> = log
            .entries(Some(1))
            .into_iter()
            .map(|e| e.call.path)
            .collect();
        assert_eq!(later, ["/b", "/c"]);
    }

    #[test]
    fn clearing_keeps_the_numbering_going() {
        let log = CallLog::new(10);
        log.append(call("/a"));
        log.clear();

        assert!(log.entries(None).is_empty());
        assert_eq!(log.append(call("/b")), 2);
    }

    #[test]
    fn the_oldest_entries_are_dropped_past_capacity() {
        let log = CallLog::new(2);
        for path in ["/a", "/b", "/c"] {
            log.append(call(path));
        }

        let seqs: Vec<_> = log.entries(None).into_iter().map(|e| e.seq).collect();
        assert_eq!(seqs, [2, 3]);
    }
}
