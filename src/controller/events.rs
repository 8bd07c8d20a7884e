//! Kubernetes Events: one for each real change and each new failure; a failure that repeats
//! stays quiet, so `kubectl describe` shows what happened rather than every retry.

use kube::Resource;
use kube::runtime::events::{Event, EventType, Recorder};
use tracing::warn;

use crate::crd::{OidcConnection, OidcConnectionStatus};
use crate::reconcile::status::{Outcome, READY, SYNCED};

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
    if let Err(error) = recorder.publish(&event, &regarding(object)).await {
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
    if let Err(error) = recorder.publish(&event, &regarding(object)).await {
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
            let generation_seen = previous.and_then(|s| s.observed_generation);
            let spec_changed = generation_seen != object.metadata.generation;
            let reason = if spec_changed || synced.sent_secret_fingerprint.is_some() {
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

/// The object the Event is about, at its current version. kube-runtime folds Events with the
/// same reason into one series for a while; the version keeps two different changes (say two
/// spec edits) from being shown as repeats of the first one's message.
fn regarding(object: &OidcConnection) -> k8s_openapi::api::core::v1::ObjectReference {
    let mut reference = object.object_ref(&());
    reference.resource_version = object.metadata.resource_version.clone();
    reference
}
