//! Wiring of the reconcile to Kubernetes: watches, the reconcile's I/O, status and Events.
//!
//! # What triggers a reconcile
//! - any change to an `OidcConnection` (spec, annotations, deletion);
//! - any change to a Secret an object references, or to the project credentials Secret
//!   (which every object uses): only Secret *metadata* is watched, so the operator never holds
//!   the cluster's secret values in memory;
//! - the object's resync interval, which bounds how long a change made in Stytch behind the
//!   operator's back can last. The objects of one organization resync at one tick, so one list
//!   of the organization serves them all (see [`lists`]).
//!
//! # Errors
//! A problem the user must fix (a missing Secret, a connection Stytch does not know, a value
//! Stytch refuses) becomes a condition and an Event and waits for a change or the next resync:
//! no retry loop. Rate limits, Stytch server errors, network failures and Kubernetes API errors
//! are retried with per-object exponential backoff and full jitter.

use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Secret;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{self, Action};
use kube::runtime::events::Reporter;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{Controller, Predicate, WatchStreamExt, predicates, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use tracing::{Instrument, info, info_span, warn};

use crate::backoff::{Backoff, WatchBackoff};
use crate::crd::{MANAGER, OidcConnection};
use crate::http::Readiness;
use crate::metrics::Metrics;
use crate::stytch::{RateLimit, StytchClient};
use crate::{Error, Result};

mod claims;
mod cleanup;
mod credentials;
mod events;
mod identity;
mod lists;
mod reconciler;

use claims::ConnectionClaims;
use credentials::CredentialsCache;
use events::Recorder;
pub use identity::{PROJECT_ID_KEY, PROJECT_SECRET_KEY, SessionOrganizations};
use lists::ConnectionLists;

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
    /// Only these namespaces are watched; all namespaces when empty.
    pub watch_namespaces: Vec<String>,
    /// Only objects with matching labels are reconciled, so that several deployments can
    /// share a cluster.
    pub label_selector: Option<String>,
    /// Resync interval for objects that do not set `spec.resyncInterval`.
    pub resync_interval: Duration,
    /// First and longest delay of the error backoff.
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    /// Outbound calls to Stytch, per project.
    pub rate_limit: RateLimit,
    /// Most reconciles running at once.
    pub concurrency: u16,
}

/// Shared by every reconcile.
pub struct Context {
    client: Client,
    stytch: StytchClient,
    config: Config,
    recorder: Recorder,
    backoff: Backoff<ObjectRef<OidcConnection>>,
    /// Every `OidcConnection` in the watched scope, kept by the controller's own watch.
    store: Store<OidcConnection>,
    /// Which objects of the scope named each connection, kept by the same watch.
    claims: Arc<ConnectionClaims>,
    metrics: Arc<Metrics>,
    /// Shared by every controller of this process.
    sessions: Arc<SessionOrganizations>,
    /// Shared by every controller of this process.
    lists: Arc<ConnectionLists>,
    /// Shared by every controller of this process; any Secret watch can report a change.
    credentials: Arc<CredentialsCache>,
}

/// Runs the controller until SIGTERM or Ctrl-C.
/// Runs the controllers until SIGTERM or Ctrl-C: one per watched namespace, or one for the
/// whole cluster. (One controller cannot watch a list of namespaces: each watch has its own
/// cache.) `readiness` is set once every controller's first list has synced.
pub async fn run(
    client: Client,
    config: Config,
    metrics: Arc<Metrics>,
    readiness: Readiness,
) -> Result<()> {
    let stytch = StytchClient::with_rate_limit(config.stytch_base_url.clone(), config.rate_limit)
        .map_err(|e| Error::Config(format!("cannot build the Stytch HTTP client: {e}")))?
        .with_metrics(metrics.clone());
    let reporter = Reporter {
        controller: MANAGER.into(),
        instance: std::env::var("POD_NAME").ok(),
    };
    let recorder = Recorder::new(client.clone(), reporter);
    let scopes: Vec<Option<String>> = if config.watch_namespaces.is_empty() {
        vec![None]
    } else {
        config.watch_namespaces.iter().cloned().map(Some).collect()
    };

    let sessions = Arc::new(SessionOrganizations::default());
    let lists = Arc::new(ConnectionLists::default());
    let credentials = Arc::new(CredentialsCache::default());
    let mut controllers = Vec::new();
    let mut stores = Vec::new();
    for scope in scopes {
        let (store, writer) = reflector::store();
        metrics.count_connections_in(store.clone());
        stores.push(store.clone());
        let context = Arc::new(Context {
            client: client.clone(),
            stytch: stytch.clone(),
            config: config.clone(),
            recorder: recorder.clone(),
            backoff: Backoff::new(config.backoff_base, config.backoff_cap),
            store,
            claims: Arc::new(ConnectionClaims::default()),
            metrics: metrics.clone(),
            sessions: sessions.clone(),
            lists: lists.clone(),
            credentials: credentials.clone(),
        });
        controllers.push(run_scope(scope, writer, context));
    }
    tokio::spawn(async move {
        for store in stores {
            // The controller waits for the same store, and kube-runtime wakes only one of
            // several waiters, so ask again now and then instead of waiting once.
            let tick = Duration::from_millis(200);
            while tokio::time::timeout(tick, store.wait_until_ready())
                .await
                .is_err()
            {}
        }
        info!("caches synced; ready");
        readiness.set_ready();
    });

    info!(credentials_secret = %config.credentials_secret, "starting the controller");
    futures::future::join_all(controllers).await;
    info!("controller stopped");
    Ok(())
}

/// One controller, for one namespace (`Some`) or the whole cluster (`None`).
async fn run_scope(
    namespace: Option<String>,
    writer: reflector::store::Writer<OidcConnection>,
    context: Arc<Context>,
) {
    let config = &context.config;
    let objects: Api<OidcConnection> = scoped_api(&context.client, namespace.as_deref());
    let mut watch_config = paged_lists();
    if let Some(selector) = &config.label_selector {
        watch_config = watch_config.labels(selector);
    }
    // Status writes (the operator's own) must not trigger reconciles, or a status that
    // changes on every attempt would loop; spec, annotation and finalizer changes must.
    let changes = predicates::generation
        .combine(predicates::annotations)
        .combine(predicates::finalizers);
    let claims = context.claims.clone();
    let object_changes = watcher(objects, watch_config)
        .backoff(WatchBackoff::default())
        .inspect_ok(move |event| claims.observe(event))
        .modify(drop_bookkeeping)
        .reflect(writer)
        .applied_objects()
        .predicate_filter(changes, Default::default());
    let store = context.store.clone();
    let secret_changes = secret_metadata_changes(&context.client, namespace.as_deref(), config);
    let credentials_secret = config.credentials_secret.clone();
    let credentials = context.credentials.clone();
    Controller::for_stream(object_changes, store.clone())
        .watches_stream(secret_changes, move |secret| {
            // Before the reconciles this change triggers, so that they read the Secret anew.
            credentials.forget(&secret.namespace().unwrap_or_default(), &secret.name_any());
            objects_reading(&store, &credentials_secret, &secret)
        })
        .with_config(controller::Config::default().concurrency(config.concurrency))
        .trigger_backoff(WatchBackoff::default())
        .shutdown_on_signal()
        .run(reconcile_logged, error_policy, context.clone())
        .for_each(|_| futures::future::ready(()))
        .await;
}

/// Watches whose lists come in pages of 500. A list "from any resourceVersion" (what client-go's
/// informers ask for) is answered from the API server's cache in one piece, whatever the page
/// size: with 20,000 Secrets, some 10 MB of metadata parsed at once. A paged list is read from
/// the latest state, a page at a time.
fn paged_lists() -> watcher::Config {
    watcher::Config::default().page_size(500)
}

/// Drops what the operator never reads from the objects it keeps in memory: managed fields
/// and kubectl's copy of the last applied manifest are often larger than the spec itself.
fn drop_bookkeeping(object: &mut OidcConnection) {
    object.metadata.managed_fields = None;
    if let Some(annotations) = &mut object.metadata.annotations {
        annotations.remove(LAST_APPLIED_ANNOTATION);
    }
}

const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

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
    namespace: Option<&str>,
    config: &Config,
) -> impl futures::Stream<Item = Result<PartialObjectMeta<Secret>, watcher::Error>> + Send + 'static
{
    let scoped: Api<PartialObjectMeta<Secret>> = scoped_api(client, namespace);
    let in_scope = watcher(scoped, paged_lists()).backoff(WatchBackoff::default());
    let in_scope = changes_after_first_list(in_scope);
    let credentials = &config.credentials_secret;
    let covered = namespace.is_none_or(|ns| ns == credentials.namespace);
    let credentials_only = (!covered).then(|| {
        let api: Api<PartialObjectMeta<Secret>> =
            Api::namespaced(client.clone(), &credentials.namespace);
        let selector = format!("metadata.name={}", credentials.name);
        let changes = watcher(api, watcher::Config::default().fields(&selector))
            .backoff(WatchBackoff::default());
        changes_after_first_list(changes)
    });
    futures::stream::select(in_scope, futures::stream::iter(credentials_only).flatten())
}

/// Secrets that changed after the first list. That list is no change: every object is
/// reconciled when the operator starts anyway, and passing it on would reconcile each object a
/// second time. Later re-lists (after a watch gap) are passed on, as they may hide changes.
fn changes_after_first_list(
    events: impl futures::Stream<
        Item = Result<watcher::Event<PartialObjectMeta<Secret>>, watcher::Error>,
    > + Send
    + 'static,
) -> impl futures::Stream<Item = Result<PartialObjectMeta<Secret>, watcher::Error>> + Send + 'static
{
    let mut first_list_done = false;
    events.filter_map(move |event| {
        let change = match event {
            Ok(watcher::Event::InitDone) => {
                first_list_done = true;
                None
            }
            Ok(watcher::Event::InitApply(secret)) if first_list_done => Some(Ok(secret)),
            Ok(watcher::Event::Init | watcher::Event::InitApply(_)) => None,
            Ok(watcher::Event::Apply(secret) | watcher::Event::Delete(secret)) => Some(Ok(secret)),
            Err(error) => Some(Err(error)),
        };
        futures::future::ready(change)
    })
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
        organization_id = object.organization_id().unwrap_or_default(),
        connection_id = object.spec.connection_id,
    );
    reconciler::reconcile(object, context)
        .instrument(span)
        .await
}

/// Kubernetes API failures: retried with the object's backoff.
fn error_policy(object: Arc<OidcConnection>, error: &Error, context: Arc<Context>) -> Action {
    context.metrics.record_reconcile("error", 0.0);
    context.metrics.retries.inc();
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
