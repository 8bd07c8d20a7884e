//! The objects of one run: N `OidcConnection`s spread over M organizations, one client-secret
//! Secret each, the project credentials, and the fake's seed in which every connection differs
//! from its spec (no client id, no client secret, another display name and identity provider),
//! so that each one needs exactly one update.
//!
//! The seeded issuer already equals the spec's, so an update triggers no issuer discovery:
//! the benchmark measures the operator, not the fake's discovery fetches.

use std::time::Instant;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};
use stytch_sso_operator::crd::OidcConnection;

use crate::error::Result;

pub const PROJECT_ID: &str = "project-test-00000000-bench-4000-8000-000000000001";
/// A made-up secret for the fake only.
pub const PROJECT_SECRET: &str = "secret-test-bench-only-not-a-real-secret";
const CREDENTIALS_SECRET: &str = "stytch-credentials";
const UNRELATED_NAMESPACE: &str = "bench-unrelated";
/// Kubernetes API requests in flight while creating or deleting objects.
const CREATES_IN_FLIGHT: usize = 32;

/// One connection: its object, its Secret and its place in Stytch.
#[derive(Clone, Debug)]
pub struct Connection {
    pub name: String,
    pub organization_id: String,
    pub connection_id: String,
    pub secret_name: String,
    pub client_id: String,
    pub client_secret: String,
    pub display_name: String,
    pub issuer: String,
}

pub struct Workload {
    pub namespace: String,
    pub organizations: Vec<String>,
    pub connections: Vec<Connection>,
}

impl Workload {
    /// `objects` connections over `organizations` organizations, connection `i` in
    /// organization `i % organizations`.
    pub fn new(namespace: &str, objects: usize, organizations: usize) -> Self {
        let organizations: Vec<String> = (0..organizations.max(1))
            .map(|k| format!("organization-test-bench-{k:04}"))
            .collect();
        let connections = (0..objects)
            .map(|i| {
                let organization = i % organizations.len();
                Connection {
                    name: format!("conn-{i:05}"),
                    organization_id: organizations[organization].clone(),
                    connection_id: format!("oidc-connection-test-bench-{i:06}"),
                    secret_name: format!("conn-{i:05}-oidc"),
                    client_id: format!("client-{i:05}"),
                    client_secret: format!("client-secret-bench-{i:05}"),
                    display_name: format!("Bench connection {i}"),
                    issuer: format!("https://idp.bench.example/org-{organization}"),
                }
            })
            .collect();
        Self {
            namespace: namespace.to_owned(),
            organizations,
            connections,
        }
    }

    pub fn credentials_secret(&self) -> String {
        format!("{}/{CREDENTIALS_SECRET}", self.namespace)
    }

    /// The fake's seed: the project, and each connection as it is before the operator runs.
    pub fn seed(&self) -> Value {
        let organizations: Vec<Value> = self
            .organizations
            .iter()
            .enumerate()
            .map(|(k, organization_id)| {
                let connections: Vec<Value> = self
                    .connections
                    .iter()
                    .filter(|c| &c.organization_id == organization_id)
                    .map(seeded_connection)
                    .collect();
                json!({"organization_id": organization_id, "slug": format!("bench-{k:04}"),
                       "connections": connections})
            })
            .collect();
        json!({
            "projects": [{"project_id": PROJECT_ID, "secret": PROJECT_SECRET}],
            "organizations": organizations,
        })
    }

    /// The namespace, the project credentials and every client-secret Secret.
    pub async fn create_secrets(&self, client: &Client) -> Result<()> {
        create_namespace(client, &self.namespace).await?;
        let secrets: Api<Secret> = Api::namespaced(client.clone(), &self.namespace);
        let credentials = secret(
            CREDENTIALS_SECRET,
            &[("project_id", PROJECT_ID), ("secret", PROJECT_SECRET)],
        );
        secrets.create(&PostParams::default(), &credentials).await?;
        let client_secrets = self
            .connections
            .iter()
            .map(|c| secret(&c.secret_name, &[("client_secret", &c.client_secret)]));
        create_all(&secrets, client_secrets).await
    }

    /// Creates every `OidcConnection`; returns how long that took.
    pub async fn apply_objects(&self, client: &Client) -> Result<std::time::Duration> {
        let objects: Api<OidcConnection> = Api::namespaced(client.clone(), &self.namespace);
        let started = Instant::now();
        let manifests = self.connections.iter().map(manifest);
        let manifests: Vec<OidcConnection> = manifests
            .map(serde_json::from_value)
            .collect::<Result<_, _>>()?;
        create_all(&objects, manifests).await?;
        Ok(started.elapsed())
    }

    /// Deletes the run's objects and Secrets. The local control plane runs no namespace
    /// controller, so deleting the namespace would leave them for the next run's operator.
    pub async fn delete(&self, client: &Client) -> Result<()> {
        let objects: Api<OidcConnection> = Api::namespaced(client.clone(), &self.namespace);
        let secrets: Api<Secret> = Api::namespaced(client.clone(), &self.namespace);
        delete_all(&objects).await?;
        delete_all(&secrets).await
    }
}

/// Secrets no `OidcConnection` references, in a namespace of their own, made once per control
/// plane: the operator watches Secret metadata in every namespace, so it sees them all.
pub async fn ensure_unrelated_secrets(client: &Client, count: usize) -> Result<()> {
    create_namespace(client, UNRELATED_NAMESPACE).await?;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), UNRELATED_NAMESPACE);
    let existing = secrets
        .list_metadata(&ListParams::default())
        .await?
        .items
        .len();
    let payload = "x".repeat(256);
    let missing =
        (existing..count).map(|i| secret(&format!("unrelated-{i:05}"), &[("data", &payload)]));
    create_all(&secrets, missing).await
}

fn seeded_connection(connection: &Connection) -> Value {
    let issuer = &connection.issuer;
    json!({
        "connection_id": connection.connection_id,
        "display_name": "Seeded",
        "identity_provider": "generic",
        "issuer": issuer,
        "authorization_url": format!("{issuer}/oauth2/authorize"),
        "token_url": format!("{issuer}/oauth2/token"),
        "userinfo_url": format!("{issuer}/oauth2/userinfo"),
        "jwks_url": format!("{issuer}/oauth2/keys"),
    })
}

fn manifest(connection: &Connection) -> Value {
    json!({
        "apiVersion": "sso.stytch-operator.dev/v1alpha1",
        "kind": "OidcConnection",
        "metadata": {"name": connection.name},
        "spec": {
            "organizationId": connection.organization_id,
            "connectionId": connection.connection_id,
            "identityProvider": "okta",
            "displayName": connection.display_name,
            "issuer": connection.issuer,
            "clientId": connection.client_id,
            "clientSecretRef": {"name": connection.secret_name, "key": "client_secret"},
        },
    })
}

fn secret(name: &str, data: &[(&str, &str)]) -> Secret {
    let string_data = data
        .iter()
        .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
        .collect();
    Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(name.to_owned()),
            ..Default::default()
        },
        string_data: Some(string_data),
        ..Default::default()
    }
}

async fn create_namespace(client: &Client, name: &str) -> Result<()> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    if namespaces.get_opt(name).await?.is_some() {
        return Ok(());
    }
    let namespace = Namespace {
        metadata: kube::api::ObjectMeta {
            name: Some(name.to_owned()),
            ..Default::default()
        },
        ..Default::default()
    };
    namespaces
        .create(&PostParams::default(), &namespace)
        .await?;
    Ok(())
}

/// Deletes every object of `api` one by one, [`CREATES_IN_FLIGHT`] at once. One
/// `deletecollection` of 10,000 objects answers with all of them, and a busy API server cut
/// that answer off after its request timeout.
async fn delete_all<K>(api: &Api<K>) -> Result<()>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let names: Vec<String> = api
        .list_metadata(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter_map(|item| item.metadata.name)
        .collect();
    futures::stream::iter(names)
        .map(|name| async move {
            match api.delete(&name, &DeleteParams::default()).await {
                Err(kube::Error::Api(response)) if response.code == 404 => Ok(()),
                other => other.map(|_| ()),
            }
        })
        .buffer_unordered(CREATES_IN_FLIGHT)
        .try_for_each(|()| futures::future::ready(Ok(())))
        .await?;
    Ok(())
}

/// Creates `items` with [`CREATES_IN_FLIGHT`] requests at once.
async fn create_all<K>(api: &Api<K>, items: impl IntoIterator<Item = K>) -> Result<()>
where
    K: kube::Resource + Clone + serde::Serialize + serde::de::DeserializeOwned + std::fmt::Debug,
{
    futures::stream::iter(items)
        .map(|item| async move { api.create(&PostParams::default(), &item).await })
        .buffer_unordered(CREATES_IN_FLIGHT)
        .try_for_each(|_| futures::future::ready(Ok(())))
        .await?;
    Ok(())
}
