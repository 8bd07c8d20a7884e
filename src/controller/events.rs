//! Kubernetes Events: one for each real change and each new failure; a failure that repeats
//! stays quiet, so `kubectl describe` shows what happened rather than every retry.
//!
//! Events are created directly rather than through kube-runtime's `Recorder`: the Recorder
//! keeps every Event it sent for six minutes, to fold repeats into series, which at 10,000
//! objects is megabytes held for nothing; this module never repeats an Event in the first place.

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event as K8sEvent;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};
use kube::runtime::events::{Event, EventType, Reporter};
use kube::{Client, Resource};
use tracing::warn;

use crate::crd::{OidcConnection, OidcConnectionStatus};
use crate::reconcile::status::{Outcome, READY, SYNCED};

/// Creates Events as one controller instance.
#[derive(Clone)]
pub struct Recorder {
    client: Client,
    reporter: Reporter,
}

impl Recorder {
    pub fn new(client: Client, reporter: Reporter) -> Self {
        Self { client, reporter }
    }

    async fn publish(&self, event: &Event, regarding: ObjectReference) -> kube::Result<()> {
        let namespace = regarding.namespace.clone().unwrap_or_default();
        let now = jiff::Timestamp::now();
        // As kubectl and client-go name Events: the object's name and a unique suffix (the
        // name must stay a DNS subdomain of at most 253 characters).
        let object_name = regarding.name.as_deref().unwrap_or_default();
        let prefix: String = object_name.chars().take(200).collect();
        let suffix = now.as_nanosecond() as u128 ^ u128::from(rand::random::<u32>());
        let event = K8sEvent {
            metadata: ObjectMeta {
                name: Some(format!("{prefix}.{suffix:x}")),
                namespace: Some(namespace.clone()),
                ..ObjectMeta::default()
            },
            action: Some(event.action.clone()),
            reason: Some(event.reason.clone()),
            note: event.note.clone(),
            type_: Some(type_name(event.type_).to_owned()),
            event_time: Some(MicroTime(now)),
            regarding: Some(regarding),
            reporting_controller: Some(self.reporter.controller.clone()),
            reporting_instance: Some(
                self.reporter
                    .instance
                    .clone()
                    .unwrap_or_else(|| self.reporter.controller.clone()),
            ),
            ..K8sEvent::default()
        };
        let api: Api<K8sEvent> = Api::namespaced(self.client.clone(), &namespace);
        api.create(&PostParams::default(), &event).await?;
        Ok(())
    }
}

fn type_name(type_: EventType) -> &'static str {
    match type_ {
        EventType::Normal => "Normal",
        EventType::Warning => "Warning",
    }
}

/// Publishes the Event for `outcome`, if it deserves one. Failing to publish is logged and
/// otherwise ignored: an Event is a courtesy, the status is the record.
pub async fn publish(
    recorder: &Recorder,
    object: &OidcConnection,
    previous: Option<&OidcConnectionStatus>,
    outcome: &Outcome,
) {
    let Some(event) = event_for(object, previous, outcome) else {
        return;
    };
    if let Err(error) = recorder.publish(&event, regarding(object)).await {
        warn!(%error, "could not publish an Event");
    }
}

/// Publishes one Event directly (deletion, finalizer handling).
pub async fn publish_one(
    recorder: &Recorder,
    object: &OidcConnection,
    type_: EventType,
    reason: &str,
    note: String,
) {
    let event = Event {
        type_,
        reason: reason.to_owned(),
        note: Some(note),
        action: "Reconcile".to_owned(),
        secondary: None,
    };
    if let Err(error) = recorder.publish(&event, regarding(object)).await {
        warn!(%error, "could not publish an Event");
    }
}

fn event_for(
    object: &OidcConnection,
    previous: Option<&OidcConnectionStatus>,
    outcome: &Outcome,
) -> Option<Event> {
    let previous_reason = |type_: &str| {
        let conditions = previous
            .map(|s| s.conditions.as_slice())
            .unwrap_or_default();
        conditions
            .iter()
            .find(|c| c.type_ == type_)
            .map(|c| c.reason.clone())
    };
    let (type_, reason, note) = match outcome {
        Outcome::Synced(synced) if !synced.updated_fields.is_empty() => {
            // Drift is a change in Stytch after this spec was in place there; an update that
            // finally lands after failed attempts is the spec's own update.
            let conditions = previous
                .map(|s| s.conditions.as_slice())
                .unwrap_or_default();
            let spec_was_in_place = conditions.iter().any(|c| {
                c.type_ == SYNCED
                    && c.status == "True"
                    && c.observed_generation == object.metadata.generation
            });
            let reason = if !spec_was_in_place || synced.sent_secret_fingerprint.is_some() {
                "Updated"
            } else {
                "DriftCorrected"
            };
            let fields = synced.updated_fields.join(", ");
            let note = format!("Set {fields} in Stytch (request_id {}).", synced.request_id);
            (EventType::Normal, reason.to_owned(), note)
        }
        Outcome::Paused if previous_reason(SYNCED).as_deref() != Some("Paused") => {
            let note = "Reconciling is paused by annotation; Stytch is not called.".to_owned();
            (EventType::Normal, "Paused".to_owned(), note)
        }
        Outcome::Failed(failure) if previous_reason(READY).as_deref() != Some(&failure.reason) => {
            let mut note = failure.message.clone();
            if let Some(request_id) = &failure.request_id {
                note.push_str(&format!(" (request_id {request_id})"));
            }
            (EventType::Warning, failure.event_reason().to_owned(), note)
        }
        _ => return None,
    };
    Some(Event {
        type_,
        reason,
        note: Some(note),
        action: "Reconcile".into(),
        secondary: None,
    })
}

/// The object the Event is about, at the version the Event speaks of.
fn regarding(object: &OidcConnection) -> ObjectReference {
    let mut reference = object.object_ref(&());
    reference.resource_version = object.metadata.resource_version.clone();
    reference
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::status::Synced;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

    fn object_at(generation: i64) -> OidcConnection {
        let mut object = OidcConnection::new("acme", Default::default());
        object.metadata.generation = Some(generation);
        object
    }

    fn status_with_synced(status: &str, generation: i64) -> OidcConnectionStatus {
        OidcConnectionStatus {
            observed_generation: Some(generation),
            conditions: vec![Condition {
                type_: SYNCED.into(),
                status: status.into(),
                reason: "Whatever".into(),
                message: String::new(),
                last_transition_time: Time(jiff::Timestamp::UNIX_EPOCH),
                observed_generation: Some(generation),
            }],
            ..Default::default()
        }
    }

    fn updated_display_name() -> Outcome {
        Outcome::Synced(Box::new(Synced {
            connection: Default::default(),
            request_id: "request-id-1".into(),
            updated_fields: vec!["display_name"],
            warning: None,
            sent_secret_fingerprint: None,
            pending_changes: Vec::new(),
            learned_organization_id: None,
        }))
    }

    fn reason(previous: &OidcConnectionStatus, generation: i64) -> String {
        let event = event_for(
            &object_at(generation),
            Some(previous),
            &updated_display_name(),
        );
        event.expect("an Event").reason
    }

    #[test]
    fn an_update_that_lands_after_failed_attempts_is_the_specs_update_not_drift() {
        assert_eq!(reason(&status_with_synced("False", 2), 2), "Updated");
        assert_eq!(reason(&status_with_synced("True", 1), 2), "Updated");
    }

    #[test]
    fn a_change_in_stytch_after_the_spec_was_in_place_is_drift() {
        assert_eq!(reason(&status_with_synced("True", 2), 2), "DriftCorrected");
    }
}
