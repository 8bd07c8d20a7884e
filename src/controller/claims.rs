//! Which objects have named each Stytch connection, so that the `Conflict` check (two objects
//! managing one connection) looks through every object only when a connection was named by
//! more than one. Looking through every object in every reconcile made a resync of N objects
//! cost N x N comparisons: at 10,000 objects, most of the operator's CPU.
//!
//! Fed from the object watch, before the cache: an object is in the cache only after it was
//! seen here. The answer errs only one way: a connection named by two objects stays marked as
//! shared after one of them is gone (a deletion missed during a watch gap, a second object
//! deleted), which costs a full look, never a missed conflict. Connection ids are immutable, so
//! an object names one connection for life.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Mutex;

use kube::runtime::watcher;

use crate::crd::OidcConnection;

/// Claimants by connection, both as 64-bit hashes, to keep the table small: 10,000 objects
/// take about 400 KiB.
#[derive(Debug, Default)]
pub struct ConnectionClaims(Mutex<HashMap<u64, Claimants>>);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Claimants {
    One(u64),
    Several,
}

impl ConnectionClaims {
    /// Records the objects of a watch event.
    pub fn observe(&self, event: &watcher::Event<OidcConnection>) {
        match event {
            watcher::Event::Apply(object) | watcher::Event::InitApply(object) => {
                self.claim(object);
            }
            watcher::Event::Delete(object) => self.release(object),
            watcher::Event::Init | watcher::Event::InitDone => {}
        }
    }

    /// Whether `object` is the only object known to have named its connection.
    pub fn is_sole_claimant(&self, object: &OidcConnection) -> bool {
        let claims = self.0.lock().unwrap_or_else(|e| e.into_inner());
        claims.get(&connection_key(object)) == Some(&Claimants::One(object_key(object)))
    }

    fn claim(&self, object: &OidcConnection) {
        let claimant = object_key(object);
        let mut claims = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match claims.entry(connection_key(object)) {
            Entry::Vacant(entry) => {
                entry.insert(Claimants::One(claimant));
            }
            Entry::Occupied(mut entry) => {
                if *entry.get() != Claimants::One(claimant) {
                    entry.insert(Claimants::Several);
                }
            }
        }
    }

    fn release(&self, object: &OidcConnection) {
        let mut claims = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let key = connection_key(object);
        if claims.get(&key) == Some(&Claimants::One(object_key(object))) {
            claims.remove(&key);
        }
    }
}

fn connection_key(object: &OidcConnection) -> u64 {
    hash(&object.spec.connection_id)
}

/// The object by namespace, name and uid: a deleted object recreated under its name is another
/// claimant.
fn object_key(object: &OidcConnection) -> u64 {
    let metadata = &object.metadata;
    hash(&(&metadata.namespace, &metadata.name, &metadata.uid))
}

/// A fixed-key SipHash: the same value gives the same key for the life of the process.
fn hash(value: &impl Hash) -> u64 {
    let mut hasher = DefaultHasher::new();
    value.hash(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(name: &str, uid: &str, connection_id: &str) -> OidcConnection {
        let mut object = OidcConnection::new(
            name,
            crate::crd::OidcConnectionSpec {
                organization_id: Some("organization-test-1".into()),
                connection_id: connection_id.into(),
                ..Default::default()
            },
        );
        object.metadata.namespace = Some("identity".into());
        object.metadata.uid = Some(uid.into());
        object
    }

    #[test]
    fn an_object_alone_on_its_connection_is_its_sole_claimant() {
        let claims = ConnectionClaims::default();
        let a = object("a", "uid-a", "oidc-connection-test-1");
        let b = object("b", "uid-b", "oidc-connection-test-2");
        claims.observe(&watcher::Event::InitApply(a.clone()));
        claims.observe(&watcher::Event::Apply(b.clone()));
        claims.observe(&watcher::Event::Apply(a.clone()));
        assert!(claims.is_sole_claimant(&a));
        assert!(claims.is_sole_claimant(&b));
    }

    #[test]
    fn a_connection_named_twice_stays_shared_until_the_process_ends() {
        let claims = ConnectionClaims::default();
        let a = object("a", "uid-a", "oidc-connection-test-1");
        let b = object("b", "uid-b", "oidc-connection-test-1");
        claims.observe(&watcher::Event::Apply(a.clone()));
        claims.observe(&watcher::Event::Apply(b.clone()));
        assert!(!claims.is_sole_claimant(&a));
        assert!(!claims.is_sole_claimant(&b));

        claims.observe(&watcher::Event::Delete(b));
        assert!(!claims.is_sole_claimant(&a), "errs towards a full look");
    }

    #[test]
    fn a_recreated_object_with_another_uid_is_another_claimant() {
        let claims = ConnectionClaims::default();
        let first = object("a", "uid-1", "oidc-connection-test-1");
        let second = object("a", "uid-2", "oidc-connection-test-1");
        claims.observe(&watcher::Event::Apply(first.clone()));
        claims.observe(&watcher::Event::Delete(first));
        claims.observe(&watcher::Event::Apply(second.clone()));
        assert!(claims.is_sole_claimant(&second));
    }

    #[test]
    fn an_object_not_seen_is_not_its_sole_claimant() {
        let claims = ConnectionClaims::default();
        assert!(!claims.is_sole_claimant(&object("a", "uid-a", "oidc-connection-test-1")));
    }
}
