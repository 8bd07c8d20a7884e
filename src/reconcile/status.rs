//! The status a reconcile writes: computed from the previous status and what just happened,
//! without I/O, so every rule below is unit-tested.
//!
//! - `Synced` says whether the last attempt to make Stytch match the spec succeeded.
//! - `Ready` says whether the connection is usable: in sync *and* active in Stytch.
//! - A condition's `lastTransitionTime` moves only when its `status` flips, and nothing in the
//!   status changes when nothing happened, so an unchanged world causes no status write.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::crd::OidcConnectionStatus;
use crate::stytch::OidcConnection;

/// Condition types.
pub const READY: &str = "Ready";
pub const SYNCED: &str = "Synced";

/// The seven fields Stytch needs before it activates a connection, with the spec's names.
const REQUIRED_FOR_ACTIVE: [&str; 7] = [
    "issuer",
    "clientId",
    "clientSecretRef",
    "authorizationUrl",
    "tokenUrl",
    "userinfoUrl",
    "jwksUrl",
];

/// Why a reconcile could not make Stytch match the spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// CamelCase, for the conditions and the Event.
    pub reason: String,
    /// What went wrong and what to do about it; never contains a secret value. Stable from
    /// one attempt to the next, so a repeated failure does not rewrite the status.
    pub message: String,
    /// Stytch's `request_id` of the failed call, for logs and the Event.
    pub request_id: Option<String>,
    /// Whether Stytch (or the way to it) failed, rather than something in Kubernetes.
    pub from_stytch: bool,
}

impl Failure {
    /// The Event reason: Stytch's refusals are all `UpdateFailed` (the condition keeps
    /// Stytch's own `error_type`), rate limits `RateLimited`, everything else its own reason.
    pub fn event_reason(&self) -> &str {
        if self.from_stytch && self.reason != "RateLimited" {
            "UpdateFailed"
        } else {
            &self.reason
        }
    }

    pub fn new(reason: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            message: message.into(),
            request_id: None,
            from_stytch: false,
        }
    }
}

/// What a reconcile did.
#[derive(Clone, Debug)]
pub enum Outcome {
    /// Stytch now matches the spec.
    Synced(Box<Synced>),
    /// The object asks the operator not to touch Stytch.
    Paused,
    Failed(Failure),
}

/// Stytch matches the spec, possibly after an update.
#[derive(Clone, Debug)]
pub struct Synced {
    pub connection: OidcConnection,
    /// Of the update when there was one, else of the list that observed the connection.
    pub request_id: String,
    /// Stytch's names of the fields the update changed; empty when none was needed.
    pub updated_fields: Vec<&'static str>,
    /// Stytch's warning from the update.
    pub warning: Option<String>,
    /// Fingerprint of the client secret the update sent, if it sent one.
    pub sent_secret_fingerprint: Option<String>,
    /// Under `managementPolicy: ObserveOnly`: spec fields that differ in Stytch and were not
    /// written. Empty under `Update`.
    pub pending_changes: Vec<String>,
    /// The organization's id as the member session told it, when there is a session.
    pub learned_organization_id: Option<String>,
}

/// The status after `outcome`, given the one before it.
pub fn next(
    previous: Option<&OidcConnectionStatus>,
    generation: Option<i64>,
    reconcile_requested_at: Option<&str>,
    outcome: &Outcome,
    now: &Time,
) -> OidcConnectionStatus {
    let previous = previous.cloned().unwrap_or_default();
    let mut status = OidcConnectionStatus {
        observed_generation: generation,
        ..previous.clone()
    };
    if let Some(token) = reconcile_requested_at {
        status.last_handled_reconcile_at = Some(token.to_owned());
    }

    let (synced, ready) = match outcome {
        Outcome::Synced(synced) if !synced.pending_changes.is_empty() => {
            apply_observation(&mut status, synced);
            let message = format!(
                "managementPolicy is ObserveOnly: Stytch differs from the spec in {}, which \
                 the operator does not write. Set managementPolicy to Update to write them.",
                synced.pending_changes.join(", ")
            );
            let pending = State::new(false, "PendingChanges", &message);
            (pending.clone(), pending)
        }
        Outcome::Synced(synced) => {
            apply_observation(&mut status, synced);
            let in_sync = State::new(true, "Synced", "The connection in Stytch matches the spec.");
            (in_sync, readiness(&status))
        }
        Outcome::Paused => {
            let message = "Reconciling is paused by the annotation \
                sso.stytch-operator.dev/paused; Stytch is not called.";
            let paused = State::new(false, "Paused", message);
            // Whether the connection is usable does not change because the operator paused.
            let ready = previous_condition(&previous, READY)
                .map(|c| State::new(c.status == "True", &c.reason, &c.message))
                .unwrap_or_else(|| paused.clone());
            (paused, ready)
        }
        Outcome::Failed(failure) => {
            let failed = State::new(false, &failure.reason, &failure.message);
            (failed.clone(), failed)
        }
    };

    // While paused, the spec is not acted on: Ready and the status keep the generation they
    // were computed for, so a waiter on the new generation keeps waiting.
    let ready_generation = if matches!(outcome, Outcome::Paused) {
        status.observed_generation = previous.observed_generation;
        previous_condition(&previous, READY).and_then(|c| c.observed_generation)
    } else {
        generation
    };
    status.conditions = vec![
        condition(&previous, READY, ready, ready_generation, now),
        condition(&previous, SYNCED, synced, generation, now),
    ];
    if status_changed(&previous, &status) && matches!(outcome, Outcome::Synced(_)) {
        status.last_sync_time = Some(now.clone());
    }
    status
}

/// Copies what Stytch reported into the status.
fn apply_observation(status: &mut OidcConnectionStatus, synced: &Synced) {
    let connection = &synced.connection;
    let updated = !synced.updated_fields.is_empty();
    status.connection_status = Some(connection.status.clone());
    status.active = connection.status == "active";
    status.redirect_url = Some(connection.redirect_url.clone()).filter(|url| !url.is_empty());
    status.pending_changes = synced.pending_changes.clone();
    if synced.learned_organization_id.is_some() {
        status.organization_id = synced.learned_organization_id.clone();
    }
    status.missing_fields = if status.active {
        Vec::new()
    } else {
        missing_fields(connection)
    };
    if updated || status.request_id.is_none() {
        status.request_id = Some(synced.request_id.clone());
    }
    if updated {
        status.warning = synced.warning.clone().filter(|warning| !warning.is_empty());
    }
    if let Some(fingerprint) = &synced.sent_secret_fingerprint {
        status.client_secret_version = Some(fingerprint.clone());
    }
}

/// Which of the seven activation fields Stytch reports empty. The client secret cannot be
/// seen (responses may mask it); it is reported missing only when the connection is pending
/// and everything else is there.
fn missing_fields(connection: &OidcConnection) -> Vec<String> {
    let values = [
        &connection.issuer,
        &connection.client_id,
        &String::new(),
        &connection.authorization_url,
        &connection.token_url,
        &connection.userinfo_url,
        &connection.jwks_url,
    ];
    let mut missing: Vec<String> = REQUIRED_FOR_ACTIVE
        .iter()
        .zip(values)
        .filter(|(name, value)| **name != "clientSecretRef" && value.is_empty())
        .map(|(name, _)| (*name).to_owned())
        .collect();
    if missing.is_empty() {
        missing.push("clientSecretRef".to_owned());
    }
    missing
}

/// What one condition says, before it gets its type and timestamps.
#[derive(Clone, Debug)]
struct State {
    is_true: bool,
    reason: String,
    message: String,
}

impl State {
    fn new(is_true: bool, reason: &str, message: &str) -> Self {
        Self {
            is_true,
            reason: reason.to_owned(),
            message: message.to_owned(),
        }
    }
}

fn readiness(status: &OidcConnectionStatus) -> State {
    if status.active {
        return State::new(
            true,
            "Active",
            "The connection is in sync and active in Stytch.",
        );
    }
    let mut message = format!(
        "Stytch reports the connection as pending; it still lacks: {}. Set them in the spec",
        status.missing_fields.join(", ")
    );
    match &status.warning {
        Some(warning) => message.push_str(&format!(" (Stytch warned: {warning}).")),
        None => message.push_str(" or let Stytch discover them from the issuer."),
    }
    State::new(false, "Pending", &message)
}

fn previous_condition<'a>(status: &'a OidcConnectionStatus, type_: &str) -> Option<&'a Condition> {
    status.conditions.iter().find(|c| c.type_ == type_)
}

fn condition(
    previous: &OidcConnectionStatus,
    type_: &str,
    state: State,
    generation: Option<i64>,
    now: &Time,
) -> Condition {
    let status = if state.is_true { "True" } else { "False" };
    let last_transition_time = previous_condition(previous, type_)
        .filter(|c| c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| now.clone());
    Condition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        reason: state.reason,
        message: state.message,
        observed_generation: generation,
        last_transition_time,
    }
}

/// Whether anything but timestamps differs.
fn status_changed(before: &OidcConnectionStatus, after: &OidcConnectionStatus) -> bool {
    let strip = |status: &OidcConnectionStatus| {
        let mut status = status.clone();
        status.last_sync_time = None;
        for condition in &mut status.conditions {
            condition.last_transition_time = Time(jiff::Timestamp::UNIX_EPOCH);
        }
        status
    };
    strip(before) != strip(after)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time(seconds: i64) -> Time {
        Time(jiff::Timestamp::from_second(seconds).unwrap())
    }

    fn active_connection() -> OidcConnection {
        OidcConnection {
            status: "active".into(),
            redirect_url: "https://test.stytch.com/v1/b2b/sso/callback/c".into(),
            ..Default::default()
        }
    }

    fn synced(updated_fields: Vec<&'static str>, request_id: &str) -> Outcome {
        Outcome::Synced(Box::new(Synced {
            connection: active_connection(),
            request_id: request_id.into(),
            updated_fields,
            warning: None,
            sent_secret_fingerprint: None,
            pending_changes: Vec::new(),
            learned_organization_id: None,
        }))
    }

    fn condition_of<'a>(status: &'a OidcConnectionStatus, type_: &str) -> &'a Condition {
        status.conditions.iter().find(|c| c.type_ == type_).unwrap()
    }

    #[test]
    fn an_active_connection_in_sync_is_ready() {
        let status = next(
            None,
            Some(3),
            None,
            &synced(vec!["display_name"], "req-1"),
            &time(10),
        );
        assert!(status.active);
        assert_eq!(status.observed_generation, Some(3));
        assert_eq!(status.request_id.as_deref(), Some("req-1"));
        assert_eq!(condition_of(&status, READY).status, "True");
        assert_eq!(condition_of(&status, READY).observed_generation, Some(3));
        assert_eq!(condition_of(&status, SYNCED).reason, "Synced");
        assert_eq!(status.last_sync_time, Some(time(10)));
    }

    #[test]
    fn an_unchanged_world_leaves_the_status_exactly_as_it_was() {
        let first = next(
            None,
            Some(1),
            None,
            &synced(vec!["issuer"], "req-1"),
            &time(10),
        );
        let second = next(
            Some(&first),
            Some(1),
            None,
            &synced(vec![], "req-list"),
            &time(20),
        );
        assert_eq!(first, second);
    }

    #[test]
    fn the_request_id_follows_the_last_update_not_every_observation() {
        let first = next(
            None,
            Some(1),
            None,
            &synced(vec![], "req-list-1"),
            &time(10),
        );
        assert_eq!(first.request_id.as_deref(), Some("req-list-1"));
        let second = next(
            Some(&first),
            Some(2),
            None,
            &synced(vec!["display_name"], "req-put"),
            &time(20),
        );
        assert_eq!(second.request_id.as_deref(), Some("req-put"));
        let third = next(
            Some(&second),
            Some(2),
            None,
            &synced(vec![], "req-list-2"),
            &time(30),
        );
        assert_eq!(third.request_id.as_deref(), Some("req-put"));
    }

    #[test]
    fn a_pending_connection_names_what_is_missing() {
        let connection = OidcConnection {
            status: "pending".into(),
            issuer: "https://idp".into(),
            client_id: "c".into(),
            token_url: "https://idp/token".into(),
            ..Default::default()
        };
        let outcome = Outcome::Synced(Box::new(Synced {
            connection,
            request_id: "r".into(),
            updated_fields: vec!["issuer"],
            warning: Some("could not fetch the OpenID configuration".into()),
            sent_secret_fingerprint: None,
            pending_changes: Vec::new(),
            learned_organization_id: None,
        }));
        let status = next(None, Some(1), None, &outcome, &time(1));
        assert_eq!(
            status.missing_fields,
            ["authorizationUrl", "userinfoUrl", "jwksUrl"]
        );
        let ready = condition_of(&status, READY);
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "Pending")
        );
        assert!(
            ready.message.contains("could not fetch"),
            "{}",
            ready.message
        );
        assert_eq!(
            status.warning.as_deref(),
            Some("could not fetch the OpenID configuration")
        );
    }

    #[test]
    fn a_failure_keeps_what_was_last_known_of_stytch() {
        let good = next(
            None,
            Some(1),
            None,
            &synced(vec!["issuer"], "req-1"),
            &time(10),
        );
        let failure = Failure::new("SecretNotFound", "Secret x does not exist");
        let bad = next(
            Some(&good),
            Some(2),
            None,
            &Outcome::Failed(failure),
            &time(20),
        );
        assert_eq!(bad.connection_status.as_deref(), Some("active"));
        assert_eq!(bad.request_id.as_deref(), Some("req-1"));
        let ready = condition_of(&bad, READY);
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "SecretNotFound")
        );
        assert_eq!(ready.last_transition_time, time(20));
        assert_eq!(condition_of(&bad, SYNCED).observed_generation, Some(2));
    }

    #[test]
    fn transition_time_moves_only_when_the_condition_flips() {
        let failure = || Outcome::Failed(Failure::new("SecretNotFound", "missing"));
        let first = next(None, Some(1), None, &failure(), &time(10));
        let second = next(Some(&first), Some(1), None, &failure(), &time(20));
        assert_eq!(condition_of(&second, READY).last_transition_time, time(10));
    }

    #[test]
    fn the_secret_fingerprint_is_remembered_until_another_is_sent() {
        let outcome = Outcome::Synced(Box::new(Synced {
            connection: active_connection(),
            request_id: "r".into(),
            updated_fields: vec!["client_secret"],
            warning: None,
            sent_secret_fingerprint: Some("sha256:0011223344556677".into()),
            pending_changes: Vec::new(),
            learned_organization_id: None,
        }));
        let status = next(None, Some(1), None, &outcome, &time(1));
        let status = next(
            Some(&status),
            Some(1),
            None,
            &synced(vec![], "r2"),
            &time(2),
        );
        assert_eq!(
            status.client_secret_version.as_deref(),
            Some("sha256:0011223344556677")
        );
    }

    #[test]
    fn observe_only_reports_pending_changes_by_name_and_is_not_ready() {
        let outcome = Outcome::Synced(Box::new(Synced {
            connection: active_connection(),
            request_id: "r".into(),
            updated_fields: vec![],
            warning: None,
            sent_secret_fingerprint: None,
            pending_changes: vec!["displayName".into()],
            learned_organization_id: None,
        }));
        let status = next(None, Some(1), None, &outcome, &time(1));
        assert_eq!(status.pending_changes, ["displayName"]);
        for type_ in [READY, SYNCED] {
            let condition = condition_of(&status, type_);
            assert_eq!(
                (condition.status.as_str(), condition.reason.as_str()),
                ("False", "PendingChanges")
            );
            assert!(condition.message.contains("displayName"));
        }
    }

    #[test]
    fn a_handled_reconcile_request_is_echoed_and_remembered() {
        let first = next(
            None,
            Some(1),
            Some("2026-12-03T10:00"),
            &synced(vec![], "r"),
            &time(1),
        );
        assert_eq!(
            first.last_handled_reconcile_at.as_deref(),
            Some("2026-12-03T10:00")
        );
        let second = next(Some(&first), Some(1), None, &synced(vec![], "r"), &time(2));
        assert_eq!(
            second.last_handled_reconcile_at.as_deref(),
            Some("2026-12-03T10:00")
        );
    }

    #[test]
    fn pausing_says_so_in_synced_and_keeps_readiness() {
        let good = next(
            None,
            Some(1),
            None,
            &synced(vec!["issuer"], "req-1"),
            &time(10),
        );
        let paused = next(Some(&good), Some(1), None, &Outcome::Paused, &time(20));
        assert_eq!(condition_of(&paused, SYNCED).reason, "Paused");
        assert_eq!(condition_of(&paused, READY).status, "True");
    }
}
