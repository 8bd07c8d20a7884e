//! The Stytch B2B API the operator uses: list, create, update and delete of OIDC connections,
//! and session authenticate.
//!
//! Each handler first admits the call (credentials, rate limit, the member session's rights,
//! fault rules), then reads or changes the store. Paths are percent-decoded by the router; an
//! organization may be named by id, slug or external id. What official SDKs add and Stytch
//! ignores (ids repeated in bodies, bodies on GET and DELETE, `?organization_id=` queries) is
//! ignored here too.

mod admit;
mod caller;
mod pipeline;
mod reply;
mod sessions;
mod validate;

use std::sync::Arc;

use axum::{
    Extension, Router,
    extract::{Path, State},
    middleware,
    routing::{delete, get, post, put},
};
use serde::Deserialize;
use serde_json::{Map, Value};

pub use self::{
    caller::{Caller, MEMBER_SESSION_HEADER, MEMBER_SESSION_JWT_HEADER, MemberSessionHeader},
    pipeline::{Credentials, RequestBody},
    reply::{Failure, Reply, StytchError},
};
use crate::{
    app::App,
    faults::Operation,
    ids,
    state::{Connection, ConnectionChanges, SecretView},
    unconfirmed,
};

/// The Stytch API routes, each wrapped in the per-call pipeline.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/v1/b2b/sso/{organization_id}", get(list))
        .route("/v1/b2b/sso/oidc/{organization_id}", post(create))
        .route(
            "/v1/b2b/sso/oidc/{organization_id}/connections/{connection_id}",
            put(update),
        )
        .route(
            "/v1/b2b/sso/{organization_id}/connections/{connection_id}",
            delete(remove),
        )
        .route(
            "/v1/b2b/sessions/authenticate",
            post(sessions::authenticate),
        )
        .fallback(|| async { Reply::Error(unconfirmed::route_not_found()) })
        .method_not_allowed_fallback(|| async { Reply::Error(unconfirmed::method_not_allowed()) })
        .layer(middleware::from_fn_with_state(
            app.clone(),
            pipeline::stytch_call,
        ))
        .with_state(app)
}

async fn list(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(organization): Path<String>,
) -> Reply {
    list_connections(&app, &caller, &organization).await.into()
}

async fn create(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Extension(body): Extension<RequestBody>,
    Path(organization): Path<String>,
) -> Reply {
    create_connection(&app, &caller, &organization, &body)
        .await
        .into()
}

async fn update(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Extension(body): Extension<RequestBody>,
    Path((organization, connection_id)): Path<(String, String)>,
) -> Reply {
    update_connection(&app, &caller, &organization, &connection_id, &body)
        .await
        .into()
}

async fn remove(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path((organization, connection_id)): Path<(String, String)>,
) -> Reply {
    delete_connection(&app, &caller, &organization, &connection_id)
        .await
        .into()
}

async fn list_connections(
    app: &App,
    caller: &Caller,
    organization: &str,
) -> Result<Map<String, Value>, Failure> {
    admit::admit(app, caller, Operation::List, organization).await?;

    let store = app.store();
    let found = store
        .organization(organization)
        .ok_or_else(|| unconfirmed::organization_not_found(organization))?;
    let connections: Vec<Value> = found
        .connections
        .iter()
        .map(|connection| connection.to_json(SecretView::Clear))
        .collect();

    let mut body = Map::new();
    body.insert("saml_connections".into(), Value::Array(vec![]));
    body.insert("oidc_connections".into(), Value::Array(connections));
    body.insert("external_connections".into(), Value::Array(vec![]));
    Ok(body)
}

/// The only fields create reads; anything else in the body is ignored.
#[derive(Deserialize)]
struct CreateRequest {
    display_name: Option<String>,
    identity_provider: Option<String>,
}

async fn create_connection(
    app: &App,
    caller: &Caller,
    organization: &str,
    body: &RequestBody,
) -> Result<Map<String, Value>, Failure> {
    admit::admit(app, caller, Operation::Create, organization).await?;
    let request: CreateRequest = body.parse()?;
    validate::identity_provider(request.identity_provider.as_deref())?;

    let mut store = app.store();
    let found = store
        .organization_mut(organization)
        .ok_or_else(|| unconfirmed::organization_not_found(organization))?;

    let connection_id = ids::connection_id();
    let redirect_url = unconfirmed::redirect_url(&app.api_url, &connection_id);
    let mut connection = Connection::new(&found.organization_id, &connection_id, redirect_url);
    connection.display_name = request.display_name.unwrap_or_default();
    connection.identity_provider = request
        .identity_provider
        .filter(|provider| !provider.is_empty())
        .unwrap_or_else(|| unconfirmed::CREATE_DEFAULT_IDENTITY_PROVIDER.to_owned());
    let shown = connection.to_json(SecretView::Clear);
    found.connections.push(connection);

    Ok(Map::from_iter([("connection".to_owned(), shown)]))
}

/// Validates, runs issuer discovery if the issuer changes, then applies the update.
///
/// Discovery runs without holding the store's lock, so the connection is looked up twice; an
/// update racing another update of the same connection's issuer may discover against a stale
/// issuer, which a single-operator test never does.
async fn update_connection(
    app: &App,
    caller: &Caller,
    organization: &str,
    connection_id: &str,
    body: &RequestBody,
) -> Result<Map<String, Value>, Failure> {
    admit::admit(app, caller, Operation::Update, organization).await?;
    let mut changes: ConnectionChanges = body.parse()?;
    validate::update(&changes)?;

    let current_issuer = with_connection(app, organization, connection_id, |connection| {
        connection.issuer.clone()
    })?;
    let warning = match changes.new_issuer(&current_issuer).map(str::to_owned) {
        Some(issuer) => discover(app, &issuer, &mut changes).await,
        None => None,
    };

    let shown = with_connection(app, organization, connection_id, |connection| {
        connection.apply(&changes);
        connection.to_json(SecretView::Clear)
    })?;

    let mut reply = Map::from_iter([("connection".to_owned(), shown)]);
    if let Some(warning) = warning {
        reply.insert("warning".into(), Value::String(warning));
    }
    Ok(reply)
}

/// Fills `changes` from the issuer's configuration; the warning to return if that failed.
async fn discover(app: &App, issuer: &str, changes: &mut ConnectionChanges) -> Option<String> {
    match app.discovery.discover(issuer).await {
        Ok(found) => {
            tracing::debug!(issuer, "issuer discovery succeeded");
            changes.fill_discovered(found);
            None
        }
        Err(warning) => {
            tracing::debug!(issuer, %warning, "issuer discovery failed");
            Some(warning)
        }
    }
}

async fn delete_connection(
    app: &App,
    caller: &Caller,
    organization: &str,
    connection_id: &str,
) -> Result<Map<String, Value>, Failure> {
    admit::admit(app, caller, Operation::Delete, organization).await?;

    let mut store = app.store();
    let found = store
        .organization_mut(organization)
        .ok_or_else(|| unconfirmed::organization_not_found(organization))?;
    let index = found
        .connections
        .iter()
        .position(|connection| connection.connection_id == connection_id)
        .ok_or_else(|| unconfirmed::connection_not_found(connection_id))?;
    found.connections.remove(index);

    Ok(Map::from_iter([(
        "connection_id".to_owned(),
        Value::from(connection_id),
    )]))
}

/// Runs `f` on a connection under the store's lock, or says which of the two was not found.
fn with_connection<T>(
    app: &App,
    organization: &str,
    connection_id: &str,
    f: impl FnOnce(&mut Connection) -> T,
) -> Result<T, StytchError> {
    let mut store = app.store();
    let found = store
        .organization_mut(organization)
        .ok_or_else(|| unconfirmed::organization_not_found(organization))?;
    let connection = found
        .connection_mut(connection_id)
        .ok_or_else(|| unconfirmed::connection_not_found(connection_id))?;
    Ok(f(connection))
}

#[cfg(test)]
mod session_tests;
#[cfg(test)]
mod tests;
