//! One reconcile of one `OidcConnection`: the I/O around the decisions in [`crate::reconcile`].
//!
//! 1. Being deleted? Hand over to [`super::cleanup`].
//! 2. Keep the finalizer in line with `deletionPolicy`.
//! 3. Paused, or another object owns the same connection? Say so; call nothing.
//! 4. Read the project credentials, the member session and the client secret; settle the
//!    organization (a member session can tell it).
//! 5. List the organization's connections and find this one.
//! 6. Diff the owned fields; under `Update`, send exactly the difference.
//! 7. Write the status if it changed; publish an Event for a real change or a new failure.
//! 8. Requeue: at the resync interval, or with backoff after a transient failure.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Resource, ResourceExt};
use secrecy::SecretString;
use tracing::{debug, info, warn};

use super::lists::{Freshness, Listed};
use super::{Context, cleanup, events, identity};
use crate::crd::{MANAGER, ManagementPolicy, OidcConnection, OidcConnectionStatus, SecretKeyRef};
use crate::reconcile::diff::{self, ClientSecret};
use crate::reconcile::status::{self, Failure, Outcome, Synced};
use crate::reconcile::{self, Call, failure_for};
use crate::secrets::{self, ReadError};
use crate::stytch::StytchError;
use crate::{Error, Result};

/// How often an object that lost a conflict looks again whether the owner is gone. No Stytch
/// call is involved, only the operator's own cache.
const CONFLICT_RECHECK: Duration = Duration::from_secs(30);

/// When to reconcile after changing the finalizers, should the watch not bring the change
/// sooner (it normally does within milliseconds).
const FINALIZER_CHANGE_FALLBACK: Duration = Duration::from_secs(1);

/// Why a step stopped short.
pub(super) enum Problem {
    /// Needs a change by the user; retried on change or at resync.
    Stable(Failure),
    /// May pass by itself; retried with backoff.
    Transient {
        failure: Failure,
        retry_after: Option<Duration>,
    },
    /// The Kubernetes API failed; retried with backoff by the error policy.
    Kube(Error),
}

impl Problem {
    pub(super) fn stytch(call: Call, error: &StytchError) -> Self {
        let failure = failure_for(call, error);
        if error.is_transient() {
            Self::Transient {
                failure,
                retry_after: error.retry_after(),
            }
        } else {
            Self::Stable(failure)
        }
    }
}

impl From<ReadError> for Problem {
    fn from(error: ReadError) -> Self {
        match error {
            ReadError::Invalid(failure) => Self::Stable(failure),
            ReadError::Api(error) => Self::Kube(error),
        }
    }
}

pub(super) async fn reconcile(
    object: Arc<OidcConnection>,
    context: Arc<Context>,
) -> Result<Action> {
    if object.metadata.deletion_timestamp.is_some() {
        return cleanup::on_deletion(&object, &context).await;
    }
    if cleanup::align_finalizer(&object, &context).await? {
        // The change of finalizers triggers the next reconcile, which then sees them. Going on
        // here would let that reconcile start from a cached copy that may not have this one's
        // status yet, and send the client secret a second time.
        return Ok(Action::requeue(FINALIZER_CHANGE_FALLBACK));
    }

    let started = Instant::now();
    // A new spec deserves a prompt try, not the wait a failing old one had built up.
    let seen_generation = object.status.as_ref().and_then(|s| s.observed_generation);
    if seen_generation != object.metadata.generation {
        context.backoff.reset(&ObjectRef::from_obj(object.as_ref()));
    }
    let (outcome, retry) = if reconcile::is_paused(&object) {
        (Outcome::Paused, None)
    } else if let Some(owner) = conflicting_owner(&object, &context) {
        (Outcome::Failed(conflict(&owner)), None)
    } else {
        match sync(&object, &context).await {
            Ok(synced) => (Outcome::Synced(Box::new(synced)), None),
            Err(Problem::Stable(failure)) => (Outcome::Failed(failure), None),
            Err(Problem::Transient {
                failure,
                retry_after,
            }) => (Outcome::Failed(failure), Some(retry_after)),
            Err(Problem::Kube(error)) => return Err(error),
        }
    };

    record(&object, &context, &outcome).await?;
    Ok(next_action(&object, &context, &outcome, retry, started))
}

/// Writes the status (when it changed) and the Event for `outcome`.
pub(super) async fn record(
    object: &OidcConnection,
    context: &Context,
    outcome: &Outcome,
) -> Result<OidcConnectionStatus> {
    let now = Time(jiff::Timestamp::now());
    let previous = object.status.as_ref();
    let requested_at = reconcile::reconcile_requested_at(object);
    let status = status::next(
        previous,
        object.metadata.generation,
        requested_at,
        outcome,
        &now,
    );
    if previous != Some(&status) {
        patch_status(context, object, &status).await?;
    }
    events::publish(&context.recorder, object, previous, outcome).await;
    Ok(status)
}

fn next_action(
    object: &OidcConnection,
    context: &Context,
    outcome: &Outcome,
    retry: Option<Option<Duration>>,
    started: Instant,
) -> Action {
    let key = ObjectRef::from_obj(object);
    let elapsed = started.elapsed();
    let elapsed_ms = elapsed.as_millis() as u64;
    let result = match (outcome, retry) {
        (_, Some(_)) => "retrying",
        (Outcome::Paused, _) => "paused",
        (Outcome::Failed(_), _) => "failed",
        (Outcome::Synced(synced), _) if synced.updated_fields.is_empty() => "synced",
        (Outcome::Synced(_), _) => "updated",
    };
    context
        .metrics
        .record_reconcile(result, elapsed.as_secs_f64());
    let interval = reconcile::resync_interval(object, context.config.resync_interval);
    let resync = reconcile::until_next_tick(&resync_group(object), interval, SystemTime::now())
        + reconcile::offset_in_tick(&key.to_string(), interval);
    match (outcome, retry) {
        (Outcome::Failed(failure), Some(retry_after)) => {
            let delay = context.backoff.next_delay(key, retry_after);
            context.metrics.retries.inc();
            let retry_in_ms = delay.as_millis() as u64;
            let (reason, request_id) = (&failure.reason, failure.request_id.as_deref());
            warn!(
                reason,
                request_id, elapsed_ms, retry_in_ms, "reconcile failed; retrying"
            );
            Action::requeue(delay)
        }
        (Outcome::Paused, _) => {
            info!(elapsed_ms, "paused");
            Action::await_change()
        }
        (Outcome::Failed(failure), _) if failure.reason == "Conflict" => {
            info!(elapsed_ms, "another object owns this connection");
            Action::requeue(CONFLICT_RECHECK)
        }
        (Outcome::Failed(failure), _) => {
            context.backoff.reset(&key);
            let (reason, request_id) = (&failure.reason, failure.request_id.as_deref());
            warn!(
                reason,
                request_id, elapsed_ms, "reconcile failed; waiting for a change"
            );
            Action::requeue(resync)
        }
        (Outcome::Synced(synced), _) => {
            context.backoff.reset(&key);
            info!(
                elapsed_ms,
                request_id = synced.request_id,
                updated = ?synced.updated_fields,
                pending = ?synced.pending_changes,
                "reconciled"
            );
            Action::requeue(resync)
        }
    }
}

/// The objects that resync together: those of one organization, as the spec names it or as the
/// member session told it; an object whose organization is not known yet goes alone.
fn resync_group(object: &OidcConnection) -> String {
    let learned = object
        .status
        .as_ref()
        .and_then(|s| s.organization_id.as_ref());
    match object.spec.organization_id.as_ref().or(learned) {
        Some(organization) => format!("organization/{organization}"),
        None => format!(
            "object/{}/{}",
            object.namespace().unwrap_or_default(),
            object.name_any()
        ),
    }
}

/// The object that owns the connection this one targets, when it is another.
pub(super) fn conflicting_owner(
    object: &OidcConnection,
    context: &Context,
) -> Option<Arc<OidcConnection>> {
    if context.claims.is_sole_claimant(object) {
        return None;
    }
    let others = context.store.state();
    let owner = reconcile::conflicting_owner(object, others.iter().map(Arc::as_ref))?;
    Some(Arc::new(owner.clone()))
}

fn conflict(owner: &OidcConnection) -> Failure {
    Failure::new(
        "Conflict",
        format!(
            "OidcConnection {}/{} already manages this Stytch connection; this object makes no \
             calls while it exists. Delete one of the two.",
            owner.namespace().unwrap_or_default(),
            owner.name_any()
        ),
    )
}

/// Read the secrets, observe, diff, and (under `Update`) update.
async fn sync(object: &OidcConnection, context: &Context) -> Result<Synced, Problem> {
    let spec = &object.spec;
    let policy = object.management_policy();
    let identity = identity::resolve(object, context).await?;
    // The client secret cannot be observed in Stytch, so ObserveOnly has no use for it.
    let client_secret = match (&spec.client_secret_ref, policy) {
        (Some(reference), ManagementPolicy::Update) => Some(ClientSecret::new(
            client_secret(object, context, reference).await?,
        )),
        _ => None,
    };

    let (organization_id, connection_id) = (
        identity.organization_id.as_str(),
        spec.connection_id.as_str(),
    );
    let listed = observe(object, context, &identity).await?;
    let observed = listed.find(connection_id).cloned().ok_or_else(|| {
        Problem::Stable(connection_not_found(
            organization_id,
            connection_id,
            &listed.request_id,
        ))
    })?;

    let last_sent = object
        .status
        .as_ref()
        .and_then(|s| s.client_secret_version.as_deref());
    let request = diff::changes(spec, &observed, client_secret.as_ref(), last_sent);
    let unchanged = Synced {
        connection: observed,
        request_id: listed.request_id.clone(),
        updated_fields: Vec::new(),
        warning: None,
        sent_secret_fingerprint: None,
        pending_changes: Vec::new(),
        learned_organization_id: identity.learned_organization_id.clone(),
    };
    if request.is_empty() {
        debug!("Stytch matches the spec; no update");
        return Ok(unchanged);
    }
    if policy == ManagementPolicy::ObserveOnly {
        let pending: Vec<String> = request
            .field_names()
            .into_iter()
            .map(reconcile::spec_field_name)
            .collect();
        debug!(
            ?pending,
            "Stytch differs from the spec; ObserveOnly writes nothing"
        );
        return Ok(Synced {
            pending_changes: pending,
            ..unchanged
        });
    }

    let updated_fields = request.field_names();
    debug!(fields = ?updated_fields, "updating the connection in Stytch");
    let response = context
        .stytch
        .update_oidc_connection(&identity.caller(), organization_id, connection_id, &request)
        .await;
    let response = match response {
        Ok(response) => response,
        Err(error) => {
            // Whatever Stytch said, the shared list may no longer show it as it is.
            context.lists.forget(&identity.list_key()).await;
            return Err(Problem::stytch(Call::Update, &error));
        }
    };
    let list_key = identity.list_key();
    context
        .lists
        .record_update(&list_key, &response.connection)
        .await;
    let sent_secret_fingerprint = request
        .client_secret
        .as_ref()
        .and(client_secret.map(|s| s.fingerprint));
    Ok(Synced {
        connection: response.connection,
        request_id: response.request_id,
        updated_fields,
        warning: response.warning,
        sent_secret_fingerprint,
        pending_changes: Vec::new(),
        learned_organization_id: identity.learned_organization_id,
    })
}

/// The organization's connections, from the list shared with the organization's other objects
/// when it is fresh enough.
///
/// A fresh list is made when the user asked for a reconcile (the requested-at annotation), and
/// when a shared list lacks the connection: it may have been created since.
async fn observe(
    object: &OidcConnection,
    context: &Context,
    identity: &identity::Identity,
) -> Result<Arc<Listed>, Problem> {
    let key = identity.list_key();
    let resync = reconcile::resync_interval(object, context.config.resync_interval);
    let requested = reconcile::reconcile_requested_at(object);
    let handled = object
        .status
        .as_ref()
        .and_then(|s| s.last_handled_reconcile_at.as_deref());
    let freshness = if requested.is_some() && requested != handled {
        Freshness::AfterNow
    } else {
        Freshness::MaxAge(resync / 2)
    };
    let list = || async {
        let caller = identity.caller();
        let organization_id = &identity.organization_id;
        context
            .stytch
            .list_connections(&caller, organization_id)
            .await
    };
    let failed = |error: Arc<StytchError>| Problem::stytch(Call::List, &error);
    let answer = context
        .lists
        .get(&key, freshness, list)
        .await
        .map_err(failed)?;
    if answer.fetched || answer.listed.find(&object.spec.connection_id).is_some() {
        return Ok(answer.listed);
    }
    let answer = context
        .lists
        .get(&key, Freshness::AfterNow, list)
        .await
        .map_err(failed)?;
    Ok(answer.listed)
}

async fn client_secret(
    object: &OidcConnection,
    context: &Context,
    reference: &SecretKeyRef,
) -> Result<SecretString, Problem> {
    let role = "OIDC client secret (spec.clientSecretRef)";
    read_object_secret(object, context, &reference.name, &reference.key, role).await
}

/// Reads one key of a Secret in the object's own namespace.
pub(super) async fn read_object_secret(
    object: &OidcConnection,
    context: &Context,
    name: &str,
    key: &str,
    role: &str,
) -> Result<SecretString, Problem> {
    let namespace = object.namespace().unwrap_or_default();
    let api: Api<Secret> = Api::namespaced(context.client.clone(), &namespace);
    Ok(secrets::read_key(&api, &namespace, name, key, role, "Secret").await?)
}

fn connection_not_found(organization_id: &str, connection_id: &str, request_id: &str) -> Failure {
    let message = format!(
        "Stytch organization {organization_id} has no OIDC connection {connection_id}. Create \
         the connection in Stytch, or recreate this object with the right connectionId."
    );
    Failure {
        request_id: Some(request_id.to_owned()),
        ..Failure::new("ConnectionNotFound", message)
    }
}

/// Server-side apply of the whole status: fields the operator no longer sets are removed.
async fn patch_status(
    context: &Context,
    object: &OidcConnection,
    status: &OidcConnectionStatus,
) -> Result<()> {
    let namespace = object.namespace().unwrap_or_default();
    let api: Api<OidcConnection> = Api::namespaced(context.client.clone(), &namespace);
    let patch = serde_json::json!({
        "apiVersion": OidcConnection::api_version(&()),
        "kind": OidcConnection::kind(&()),
        "status": status,
    });
    let params = PatchParams::apply(MANAGER).force();
    api.patch_status(&object.name_any(), &params, &Patch::Apply(&patch))
        .await
        .map_err(Error::Kube)?;
    Ok(())
}
