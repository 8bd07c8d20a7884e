//! Deletion: the finalizer that `deletionPolicy: Delete` needs, and deleting the connection in
//! Stytch before the object goes.
//!
//! - `Orphan` (the default) keeps no finalizer: deleting the object never calls Stytch and
//!   never needs credentials. Switching from `Delete` to `Orphan` removes the finalizer, which
//!   is also how a user releases an object stuck in deletion.
//! - `Delete` adds the finalizer. On deletion, the connection is deleted in Stytch (a 404
//!   counts as done) and then the finalizer is removed. Only the object that owns the
//!   connection deletes it: one that lost a conflict just lets go.
//! - While the object is paused, nothing is called and the finalizer stays.

use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, ResourceExt};
use reqwest::StatusCode;
use tracing::info;

use super::reconciler::{self, Problem};
use super::{Context, events, identity};
use crate::crd::{DeletionPolicy, FINALIZER, OidcConnection};
use crate::reconcile::status::{Failure, Outcome};
use crate::reconcile::{self, Call};
use crate::stytch::StytchError;
use crate::{Error, Result};

/// Adds or removes the finalizer so that it is there exactly when `deletionPolicy` is `Delete`.
/// Adds or removes the finalizer as `deletionPolicy` asks; says whether it changed anything.
pub(super) async fn align_finalizer(object: &OidcConnection, context: &Context) -> Result<bool> {
    let wanted = object.deletion_policy() == DeletionPolicy::Delete;
    if wanted == object.has_finalizer() {
        return Ok(false);
    }
    let mut finalizers: Vec<String> = object.finalizers().to_vec();
    if wanted {
        finalizers.push(FINALIZER.to_owned());
    } else {
        finalizers.retain(|f| f != FINALIZER);
    }
    set_finalizers(object, context, finalizers).await?;
    Ok(true)
}

/// The reconcile of an object being deleted.
pub(super) async fn on_deletion(cached: &OidcConnection, context: &Context) -> Result<Action> {
    if !cached.has_finalizer() {
        return Ok(Action::await_change());
    }
    // The cache can lag behind a release this operator has just made (a reconcile queued
    // meanwhile runs on the old copy): read the object afresh, so that a connection is deleted
    // in Stytch once, not once more with a 404.
    let fresh = objects_of(cached, context)
        .get_opt(&cached.name_any())
        .await
        .map_err(Error::Kube)?;
    let Some(object) = fresh.filter(|o| o.metadata.uid == cached.metadata.uid) else {
        return Ok(Action::await_change());
    };
    let object = &object;
    if !object.has_finalizer() {
        return Ok(Action::await_change());
    }
    if object.deletion_policy() == DeletionPolicy::Delete {
        if reconcile::is_paused(object) {
            reconciler::record(object, context, &Outcome::Paused).await?;
            return Ok(Action::await_change());
        }
        let owns_connection = reconciler::conflicting_owner(object, context).is_none();
        if owns_connection {
            match delete_in_stytch(object, context).await {
                Ok(request_id) => {
                    let note = match request_id {
                        Some(id) => format!("Deleted the connection in Stytch (request_id {id})."),
                        None => "The connection was already gone from Stytch.".to_owned(),
                    };
                    info!("{note}");
                    events::publish_one(
                        &context.recorder,
                        object,
                        EventType::Normal,
                        "Deleted",
                        note,
                    )
                    .await;
                }
                Err(problem) => return stuck(object, context, problem).await,
            }
        }
    }
    release(object, context).await?;
    Ok(Action::await_change())
}

/// Removes the operator's finalizer once the connection is dealt with. The patch tests that
/// the finalizer list is still the one read, so another controller's finalizer is never lost;
/// unlike a patch carrying the resourceVersion, it does not fail on an unrelated change made
/// since (often the operator's own status write), which would repeat the call to Stytch when
/// the reconcile is retried.
async fn release(object: &OidcConnection, context: &Context) -> Result<()> {
    let remaining: Vec<&String> = object
        .finalizers()
        .iter()
        .filter(|f| *f != FINALIZER)
        .collect();
    let patch = serde_json::json!([
        { "op": "test", "path": "/metadata/finalizers", "value": object.finalizers() },
        { "op": "replace", "path": "/metadata/finalizers", "value": remaining },
    ]);
    let patch = serde_json::from_value(patch).expect("the JSON patch is well formed");
    objects_of(object, context)
        .patch::<()>(
            &object.name_any(),
            &PatchParams::default(),
            &Patch::Json(patch),
        )
        .await
        .map_err(Error::Kube)?;
    Ok(())
}

fn objects_of(object: &OidcConnection, context: &Context) -> Api<OidcConnection> {
    Api::namespaced(
        context.client.clone(),
        &object.namespace().unwrap_or_default(),
    )
}

/// Deletes the connection; `None` when Stytch no longer had it.
async fn delete_in_stytch(
    object: &OidcConnection,
    context: &Context,
) -> Result<Option<String>, Problem> {
    let identity = identity::resolve(object, context).await?;
    let (caller, connection_id) = (identity.caller(), &object.spec.connection_id);
    match context
        .stytch
        .delete_connection(&caller, &identity.organization_id, connection_id)
        .await
    {
        Ok(response) => {
            context.lists.forget(&identity.list_key()).await;
            Ok(Some(response.request_id))
        }
        Err(StytchError::Api {
            status: StatusCode::NOT_FOUND,
            error_type,
            ..
        }) if !error_type.starts_with("session") => Ok(None),
        Err(error) => Err(Problem::stytch(Call::Delete, &error)),
    }
}

/// Records why deletion cannot finish, and how to release the object anyway.
async fn stuck(object: &OidcConnection, context: &Context, problem: Problem) -> Result<Action> {
    let release = " The object is being deleted with deletionPolicy Delete, so it stays until \
        the connection is deleted in Stytch. To let it go without deleting the connection, set \
        spec.deletionPolicy to Orphan.";
    let with_release = |failure: Failure| Failure {
        message: failure.message + release,
        ..failure
    };
    let key = ObjectRef::from_obj(object);
    let resync = reconcile::resync_interval(object, context.config.resync_interval);
    let (failure, delay) = match problem {
        Problem::Kube(error) => return Err(error),
        Problem::Stable(failure) => (with_release(failure), reconcile::jittered(resync)),
        Problem::Transient {
            failure,
            retry_after,
        } => (
            with_release(failure),
            context.backoff.next_delay(key, retry_after),
        ),
    };
    reconciler::record(object, context, &Outcome::Failed(failure)).await?;
    Ok(Action::requeue(delay))
}

/// Sets the finalizer list, failing on any change made since `object` was read (the
/// resourceVersion is part of the patch), so another controller's finalizer is never lost.
async fn set_finalizers(
    object: &OidcConnection,
    context: &Context,
    finalizers: Vec<String>,
) -> Result<()> {
    let api = objects_of(object, context);
    let patch = serde_json::json!({
        "metadata": { "finalizers": finalizers, "resourceVersion": object.resource_version() }
    });
    api.patch(
        &object.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await
    .map_err(Error::Kube)?;
    Ok(())
}
