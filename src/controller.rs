//! Wiring of the reconcile to Kubernetes: watches, the reconcile's I/O, status and Events.
//!
//! # What triggers a reconcile
//! - any change to an `OidcConnection` (spec, annotations, deletion);
//! - any change to a Secret an object references, or to the project credentials Secret
//!   (which every object uses): only Secret *metadata* is watched, so the operator never holds
//!   the cluster's secret values in memory;
//! - the object's resync interval (10 % jitter), which bounds how long a change made in Stytch
//!   behind the operator's back can last.
//!
//! # Errors
//! A problem the user must fix (a missing Secret, a connection Stytch does not know, a value
//! Stytch refuses) becomes a condition and an Event and waits for a change or the next resync:
//! no retry loop. Rate limits, Stytch server errors, network failures and Kubernetes API errors
//! are retried with per-object exponential backoff and full jitter.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Patch, PatchParams};
use kube::core::PartialObjectMeta;
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{Controller, Predicate, WatchStreamExt, predicates, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use secrecy::SecretString;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::backoff::Backoff;
use crate::crd::{MANAGER, OidcConnection, OidcConnectionStatus};
use crate::reconcile::diff::{self, ClientSecret};
use crate::reconcile::status::{self, Failure, Outcome, READY, Synced};
use crate::reconcile::{self, failure_for};
use crate::secrets::{self, ReadError};
use crate::stytch::{ProjectCredentials, StytchClient, StytchError};
use crate::{Error, Result};

/// Keys of the project credentials Secret.
pub const PROJECT_ID_KEY: &str = "project_id";
pub const PROJECT_SECRET_KEY: &str = "secret";

/// A Secret named by namespace and name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretName {
    pub namespace: String,
    pub name: String,
}

impl std::str::FromStr for SecretName {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.split_once('/') {
            Some((namespace, name)) if !namespace.is_empty() && !name.is_empty() => Ok(Self {
                namespace: namespace.into(),
                name: name.into(),
            }),
            _ => Err(format!("expected NAMESPACE/NAME, got {text:?}")),
        }
    }
}

impl std::fmt::Display for SecretName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// How the operator runs; from the command line.
#[derive(Clone, Debug)]
pub struct Config {
    /// Overrides the Stytch API base URL chosen from the project id.
    pub stytch_base_url: Option<String>,
    /// Secret with the default project credentials (`project_id`, `secret`).
    pub credentials_secret: SecretName,
    /// Only this namespace is watched when set; all namespaces otherwise.
    pub watch_namespace: Option<String>,
    /// Resync interval for objects that do not set `spec.resyncInterval`.
    pub resync_interval: Duration,
    /// First and longest delay of the error backoff.
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
}

/// Shared by every reconcile.
pub struct Context {
    client: Client,
    stytch: StytchClient,
    config: Config,
    recorder: Recorder,
    backoff: Backoff<ObjectRef<OidcConnection>>,
}

/// Why `sync` stopped short of a synced connection.
enum Problem {
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
    fn stytch(action: &str, error: StytchError) -> Self {
        let failure = failure_for(action, &error);
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

/// Runs the controller until SIGTERM or Ctrl-C.
pub async fn run(client: Client, config: Config) -> Result<()> {
    let stytch = StytchClient::new(config.stytch_base_url.clone())
        .map_err(|e| Error::Config(format!("cannot build the Stytch HTTP client: {e}")))?;
    let reporter = Reporter {
        controller: MANAGER.into(),
        instance: std::env::var("POD_NAME").ok(),
    };
    let recorder = Recorder::new(client.clone(), reporter);
    let objects: Api<OidcConnection> = scoped_api(&client, config.watch_namespace.as_deref());

    // Status writes (the operator's own) must not trigger reconciles, or a status that
    // changes on every attempt would loop; spec, annotation and finalizer changes must.
    let (store, writer) = reflector::store();
    let changes = predicates::generation
        .combine(predicates::annotations)
        .combine(predicates::finalizers);
    let object_changes = watcher(objects, watcher::Config::default().any_semantic())
        .default_backoff()
        .reflect(writer)
        .applied_objects()
        .predicate_filter(changes, Default::default());
    let controller = Controller::for_stream(object_changes, store.clone());
    let secret_changes = secret_metadata_changes(&client, &config);
    let credentials_secret = config.credentials_secret.clone();
    let backoff = Backoff::new(config.backoff_base, config.backoff_cap);
    let context = Arc::new(Context {
        client,
        stytch,
        config,
        recorder,
        backoff,
    });

    info!(credentials_secret = %credentials_secret, "starting the controller");
    controller
        .watches_stream(secret_changes, move |secret| {
            objects_reading(&store, &credentials_secret, &secret)
        })
        .shutdown_on_signal()
        .run(reconcile_logged, error_policy, context)
        .for_each(|_| futures::future::ready(()))
        .await;
    info!("controller stopped");
    Ok(())
}

fn scoped_api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = kube::core::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match namespace {
        Some(namespace) => Api::namespaced(client.clone(), namespace),
        None => Api::all(client.clone()),
    }
}

/// Changes to Secrets, metadata only, in the watched scope and to the credentials Secret.
fn secret_metadata_changes(
    client: &Client,
    config: &Config,
) -> impl futures::Stream<Item = Result<PartialObjectMeta<Secret>, watcher::Error>> + Send + 'static
{
    let scoped: Api<PartialObjectMeta<Secret>> =
        scoped_api(client, config.watch_namespace.as_deref());
    let in_scope = watcher(scoped, watcher::Config::default().any_semantic())
        .default_backoff()
        .touched_objects();
    let credentials = &config.credentials_secret;
    let covered = config
        .watch_namespace
        .as_ref()
        .is_none_or(|ns| *ns == credentials.namespace);
    let credentials_only = (!covered).then(|| {
        let api: Api<PartialObjectMeta<Secret>> =
            Api::namespaced(client.clone(), &credentials.namespace);
        let selector = format!("metadata.name={}", credentials.name);
        watcher(api, watcher::Config::default().fields(&selector))
            .default_backoff()
            .touched_objects()
    });
    futures::stream::select(in_scope, futures::stream::iter(credentials_only).flatten())
}

/// The objects to reconcile when `secret` changed.
fn objects_reading(
    store: &Store<OidcConnection>,
    credentials_secret: &SecretName,
    secret: &PartialObjectMeta<Secret>,
) -> Vec<ObjectRef<OidcConnection>> {
    let namespace = secret.namespace().unwrap_or_default();
    let name = secret.name_any();
    let is_credentials =
        namespace == credentials_secret.namespace && name == credentials_secret.name;
    store
        .state()
        .iter()
        .filter(|object| is_credentials || object.references_secret(&namespace, &name))
        .map(|object| ObjectRef::from_obj(object.as_ref()))
        .collect()
}

async fn reconcile_logged(object: Arc<OidcConnection>, context: Arc<Context>) -> Result<Action> {
    let span = info_span!(
        "reconcile",
        namespace = object.namespace().unwrap_or_default(),
        name = object.name_any(),
        organization_id = object.spec.organization_id,
        connection_id = object.spec.connection_id,
    );
    reconcile(object, context).instrument(span).await
}

/// One reconcile: observe Stytch, update it if needed, then record what happened.
async fn reconcile(object: Arc<OidcConnection>, context: Arc<Context>) -> Result<Action> {
    let started = Instant::now();
    let key = ObjectRef::from_obj(object.as_ref());

    let (outcome, retry) = if reconcile::is_paused(&object) {
        (Outcome::Paused, None)
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

    let now = Time(jiff::Timestamp::now());
    let previous = object.status.as_ref();
    let status = status::next(previous, object.metadata.generation, &outcome, &now);
    if previous != Some(&status) {
        patch_status(&context.client, &object, &status).await?;
    }
    publish_events(&context.recorder, &object, previous, &outcome).await;

    let elapsed_ms = started.elapsed().as_millis() as u64;
    let ready = status.conditions.iter().find(|c| c.type_ == READY);
    let reason = ready.map(|c| c.reason.as_str()).unwrap_or_default();
    let request_id = match &outcome {
        Outcome::Failed(failure) => failure.request_id.as_deref(),
        _ => None,
    };
    let action = match (&outcome, retry) {
        (_, Some(retry_after)) => {
            let delay = context.backoff.next_delay(key, retry_after);
            warn!(
                reason,
                elapsed_ms,
                retry_in_ms = delay.as_millis() as u64,
                "reconcile failed"
            );
            Action::requeue(delay)
        }
        (Outcome::Paused, _) => {
            info!(reason, elapsed_ms, "paused");
            Action::await_change()
        }
        (Outcome::Failed(_), None) => {
            context.backoff.reset(&key);
            warn!(
                reason,
                request_id, elapsed_ms, "reconcile failed; waiting for a change"
            );
            Action::requeue(reconcile::jittered(resync_of(&object, &context)))
        }
        (Outcome::Synced(synced), _) => {
            context.backoff.reset(&key);
            info!(
                reason,
                elapsed_ms,
                request_id = synced.request_id,
                updated = ?synced.updated_fields,
                "reconciled"
            );
            Action::requeue(reconcile::jittered(resync_of(&object, &context)))
        }
    };
    Ok(action)
}

fn resync_of(object: &OidcConnection, context: &Context) -> Duration {
    reconcile::resync_interval(object, context.config.resync_interval)
}

fn error_policy(object: Arc<OidcConnection>, error: &Error, context: Arc<Context>) -> Action {
    let delay = context
        .backoff
        .next_delay(ObjectRef::from_obj(object.as_ref()), None);
    warn!(
        namespace = object.namespace().unwrap_or_default(),
        name = object.name_any(),
        %error,
        retry_in_ms = delay.as_millis() as u64,
        "reconcile error"
    );
    Action::requeue(delay)
}

/// Steps 2 to 5 of a reconcile: read the secrets, observe, diff, update.
async fn sync(object: &OidcConnection, context: &Context) -> Result<Synced, Problem> {
    let spec = &object.spec;
    let credentials = project_credentials(context).await?;
    let client_secret = match &spec.client_secret_ref {
        Some(reference) => Some(ClientSecret::new(
            client_secret(object, context, reference).await?,
        )),
        None => None,
    };

    let listed = context
        .stytch
        .list_connections(&credentials, &spec.organization_id)
        .await
        .map_err(|e| Problem::stytch("list the organization's SSO connections", e))?;
    let observed = listed
        .oidc_connections
        .into_iter()
        .find(|connection| connection.connection_id == spec.connection_id)
        .ok_or_else(|| Problem::Stable(connection_not_found(object, &listed.request_id)))?;

    let last_sent = object
        .status
        .as_ref()
        .and_then(|s| s.client_secret_version.as_deref());
    let request = diff::changes(spec, &observed, client_secret.as_ref(), last_sent);
    if request.is_empty() {
        debug!("Stytch matches the spec; no update");
        return Ok(Synced {
            connection: observed,
            request_id: listed.request_id,
            updated_fields: Vec::new(),
            warning: None,
            sent_secret_fingerprint: None,
        });
    }

    let updated_fields = request.field_names();
    debug!(fields = ?updated_fields, "updating the connection in Stytch");
    let response = context
        .stytch
        .update_oidc_connection(
            &credentials,
            &spec.organization_id,
            &spec.connection_id,
            &request,
        )
        .await
        .map_err(|e| Problem::stytch("update the connection in Stytch", e))?;
    let sent_secret_fingerprint = request
        .client_secret
        .is_some()
        .then(|| client_secret.map(|s| s.fingerprint))
        .flatten();
    Ok(Synced {
        connection: response.connection,
        request_id: response.request_id,
        updated_fields,
        warning: response.warning,
        sent_secret_fingerprint,
    })
}

async fn project_credentials(context: &Context) -> Result<ProjectCredentials, Problem> {
    let name = &context.config.credentials_secret;
    let api: Api<Secret> = Api::namespaced(context.client.clone(), &name.namespace);
    let read = |key: &'static str| {
        let api = api.clone();
        async move {
            let role = "Stytch project credentials";
            secrets::read_key(&api, &name.namespace, &name.name, key, role, "Credentials").await
        }
    };
    let project_id = read(PROJECT_ID_KEY).await?;
    let secret = read(PROJECT_SECRET_KEY).await?;
    let project_id = secrecy::ExposeSecret::expose_secret(&project_id).to_owned();
    Ok(ProjectCredentials { project_id, secret })
}

async fn client_secret(
    object: &OidcConnection,
    context: &Context,
    reference: &crate::crd::SecretKeyRef,
) -> Result<SecretString, Problem> {
    let namespace = object.namespace().unwrap_or_default();
    let api: Api<Secret> = Api::namespaced(context.client.clone(), &namespace);
    let role = "OIDC client secret (spec.clientSecretRef)";
    Ok(secrets::read_key(
        &api,
        &namespace,
        &reference.name,
        &reference.key,
        role,
        "Secret",
    )
    .await?)
}

fn connection_not_found(object: &OidcConnection, request_id: &str) -> Failure {
    let spec = &object.spec;
    let mut failure = Failure::new(
        "ConnectionNotFound",
        format!(
            "Stytch organization {} has no OIDC connection {}. Create the connection in \
             Stytch, or recreate this object with the right connectionId.",
            spec.organization_id, spec.connection_id
        ),
    );
    failure.request_id = Some(request_id.to_owned());
    failure
}

/// Server-side apply of the whole status: fields the operator no longer sets are removed.
async fn patch_status(
    client: &Client,
    object: &OidcConnection,
    status: &OidcConnectionStatus,
) -> Result<()> {
    let api: Api<OidcConnection> =
        Api::namespaced(client.clone(), &object.namespace().unwrap_or_default());
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

/// An Event for each real change and each new failure; repeats of a failure stay quiet.
async fn publish_events(
    recorder: &Recorder,
    object: &OidcConnection,
    previous: Option<&OidcConnectionStatus>,
    outcome: &Outcome,
) {
    let previous_reason = |type_: &str| {
        previous
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == type_))
            .map(|c| c.reason.clone())
    };
    let event = match outcome {
        Outcome::Synced(synced) if !synced.updated_fields.is_empty() => {
            let spec_changed =
                previous.and_then(|s| s.observed_generation) != object.metadata.generation;
            let reason = if spec_changed || synced.sent_secret_fingerprint.is_some() {
                "Updated"
            } else {
                "DriftCorrected"
            };
            let note = format!(
                "Set {} in Stytch (request_id {}).",
                synced.updated_fields.join(", "),
                synced.request_id
            );
            Some((EventType::Normal, reason.to_owned(), note, "Update"))
        }
        Outcome::Paused if previous_reason(status::SYNCED).as_deref() != Some("Paused") => Some((
            EventType::Normal,
            "Paused".to_owned(),
            "Reconciling is paused by annotation; Stytch is not called.".to_owned(),
            "Pause",
        )),
        Outcome::Failed(failure) if previous_reason(READY).as_deref() != Some(&failure.reason) => {
            Some((
                EventType::Warning,
                failure.reason.clone(),
                failure.message.clone(),
                "Reconcile",
            ))
        }
        _ => None,
    };
    let Some((type_, reason, note, action)) = event else {
        return;
    };
    let event = Event {
        type_,
        reason,
        note: Some(note),
        action: action.into(),
        secondary: None,
    };
    if let Err(error) = recorder.publish(&event, &object.object_ref(&())).await {
        warn!(%error, "could not publish an Event");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names_parse_as_namespace_slash_name() {
        let name: SecretName = "stytch-system/stytch-credentials".parse().unwrap();
        assert_eq!(name.namespace, "stytch-system");
        assert_eq!(name.name, "stytch-credentials");
        assert!("no-slash".parse::<SecretName>().is_err());
        assert!("/name".parse::<SecretName>().is_err());
    }
}
