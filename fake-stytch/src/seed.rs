//! The seed format: the JSON that `--seed`, `PUT /_fake/state` and `POST /_fake/organizations`
//! take, and that `GET /_fake/state` returns with its secrets replaced by fingerprints.
//!
//! A connection in a seed may carry any connection field; missing strings are `""`, a missing
//! `connection_id` is generated, a missing `redirect_url` is the one the fake would have given
//! the connection at creation. `status` is ignored: it always follows from the fields.

use std::collections::HashSet;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::{
    ids, redact,
    state::{Connection, ConnectionChanges, Organization, Project, SecretView, Store},
    unconfirmed,
};

#[derive(Clone, Debug, Default, Deserialize)]
pub struct Seed {
    /// `None` when the document has no `projects` key: replacing the state then keeps the
    /// projects already configured, so a test cannot lock itself out by accident.
    #[serde(default)]
    pub projects: Option<Vec<ProjectSeed>>,
    #[serde(default)]
    pub organizations: Vec<OrganizationSeed>,
}

#[derive(Clone, Deserialize)]
pub struct ProjectSeed {
    pub project_id: String,
    pub secret: String,
}

#[derive(Clone, Debug, Deserialize)]
pub struct OrganizationSeed {
    #[serde(default)]
    pub organization_id: Option<String>,
    #[serde(default)]
    pub slug: String,
    #[serde(default)]
    pub external_id: String,
    #[serde(default)]
    pub connections: Vec<ConnectionSeed>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct ConnectionSeed {
    #[serde(default)]
    pub connection_id: Option<String>,
    #[serde(default)]
    pub redirect_url: Option<String>,
    #[serde(flatten)]
    pub fields: ConnectionChanges,
}

/// A seed that would make lookups ambiguous.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SeedError {
    #[error("two organizations answer to {0:?} (ids, slugs and external ids must be unique)")]
    DuplicateOrganization(String),
    #[error("connection id {0:?} appears twice")]
    DuplicateConnection(String),
}

impl std::fmt::Debug for ProjectSeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProjectSeed")
            .field("project_id", &self.project_id)
            .finish_non_exhaustive()
    }
}

impl From<ProjectSeed> for Project {
    fn from(seed: ProjectSeed) -> Self {
        Self {
            project_id: seed.project_id,
            secret: seed.secret,
        }
    }
}

impl OrganizationSeed {
    /// The organization this seed describes. `api_url` makes default redirect URLs.
    pub fn build(self, api_url: &str) -> Organization {
        let organization_id = self.organization_id.unwrap_or_else(ids::organization_id);
        let connections = self
            .connections
            .into_iter()
            .map(|seed| seed.build(&organization_id, api_url))
            .collect();
        Organization {
            organization_id,
            slug: self.slug,
            external_id: self.external_id,
            connections,
        }
    }
}

impl ConnectionSeed {
    fn build(self, organization_id: &str, api_url: &str) -> Connection {
        let connection_id = self.connection_id.unwrap_or_else(ids::connection_id);
        let redirect_url = self
            .redirect_url
            .unwrap_or_else(|| unconfirmed::redirect_url(api_url, &connection_id));
        let mut connection = Connection::new(organization_id, &connection_id, redirect_url);
        connection.apply(&self.fields);
        connection
    }
}

/// Builds a store from a seed. `projects` stands in when the seed has no `projects` key.
pub fn build_store(seed: Seed, projects: Vec<Project>, api_url: &str) -> Result<Store, SeedError> {
    let projects = match seed.projects {
        Some(seeded) => seeded.into_iter().map(Project::from).collect(),
        None => projects,
    };
    let organizations: Vec<Organization> = seed
        .organizations
        .into_iter()
        .map(|seed| seed.build(api_url))
        .collect();
    check_unique(&organizations)?;
    Ok(Store {
        projects,
        organizations,
    })
}

/// Adds one organization unless one of its names or connection ids is already taken.
pub fn add_organization(store: &mut Store, organization: Organization) -> Result<(), SeedError> {
    store.organizations.push(organization);
    if let Err(error) = check_unique(&store.organizations) {
        store.organizations.pop();
        return Err(error);
    }
    Ok(())
}

fn check_unique(organizations: &[Organization]) -> Result<(), SeedError> {
    let mut names = HashSet::new();
    let mut connection_ids = HashSet::new();
    for organization in organizations {
        let own_names: HashSet<&str> = [
            &organization.organization_id,
            &organization.slug,
            &organization.external_id,
        ]
        .into_iter()
        .map(String::as_str)
        .filter(|name| !name.is_empty())
        .collect();
        for name in own_names {
            if !names.insert(name) {
                return Err(SeedError::DuplicateOrganization(name.to_owned()));
            }
        }

        for connection in &organization.connections {
            if !connection_ids.insert(connection.connection_id.as_str()) {
                return Err(SeedError::DuplicateConnection(
                    connection.connection_id.clone(),
                ));
            }
        }
    }
    Ok(())
}

/// The state in seed format, with every secret replaced by its fingerprint.
pub fn export(store: &Store) -> Value {
    let projects: Vec<Value> = store
        .projects
        .iter()
        .map(|project| {
            json!({"project_id": project.project_id, "secret": redact::conceal(&project.secret)})
        })
        .collect();
    let organizations: Vec<Value> = store
        .organizations
        .iter()
        .map(export_organization)
        .collect();
    json!({"projects": projects, "organizations": organizations})
}

pub fn export_organization(organization: &Organization) -> Value {
    let connections: Vec<Value> = organization
        .connections
        .iter()
        .map(|connection| connection.to_json(SecretView::Fingerprint))
        .collect();
    json!({
        "organization_id": organization.organization_id,
        "slug": organization.slug,
        "external_id": organization.external_id,
        "connections": connections,
    })
}

/// Parses `ID:SECRET` as given to `--project`. The secret may itself contain `:`.
pub fn parse_project(argument: &str) -> Result<Project, String> {
    match argument.split_once(':') {
        Some((project_id, secret)) if !project_id.is_empty() && !secret.is_empty() => Ok(Project {
            project_id: project_id.to_owned(),
            secret: secret.to_owned(),
        }),
        _ => Err("expected PROJECT_ID:SECRET".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const API_URL: &str = "http://127.0.0.1:1";

    fn seed(value: Value) -> Seed {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn seeded_connections_get_defaults_and_a_derived_status() {
        let store = build_store(
            seed(json!({
                "projects": [{"project_id": "project-test-1", "secret": "secret-test-1"}],
                "organizations": [{
                    "organization_id": "organization-test-1",
                    "slug": "acme",
                    "connections": [{
                        "connection_id": "oidc-connection-test-1",
                        "display_name": "Acme",
                        "identity_provider": "generic",
                        "status": "active",
                    }],
                }],
            })),
            vec![],
            API_URL,
        )
        .unwrap();

        let connection = &store.organizations[0].connections[0];
        assert_eq!(connection.organization_id, "organization-test-1");
        assert_eq!(connection.client_id, "");
        assert_eq!(
            connection.redirect_url,
            "http://127.0.0.1:1/v1/b2b/sso/callback/oidc-connection-test-1"
        );
        assert_eq!(connection.to_json(SecretView::Clear)["status"], "pending");
        assert!(store.authenticates("project-test-1", "secret-test-1"));
    }

    #[test]
    fn a_seed_without_projects_keeps_the_given_ones() {
        let given = vec![parse_project("project-test-1:s").unwrap()];
        let store = build_store(seed(json!({"organizations": []})), given.clone(), API_URL);
        assert_eq!(store.unwrap().projects, given);
    }

    #[test]
    fn two_organizations_with_the_same_slug_are_refused() {
        let built = build_store(
            seed(json!({"organizations": [{"slug": "acme"}, {"slug": "acme"}]})),
            vec![],
            API_URL,
        );
        assert_eq!(
            built.unwrap_err(),
            SeedError::DuplicateOrganization("acme".into())
        );
    }

    #[test]
    fn the_exported_state_shows_fingerprints_instead_of_secrets() {
        let store = build_store(
            seed(json!({
                "projects": [{"project_id": "project-test-1", "secret": "project-secret"}],
                "organizations": [{"connections": [{"client_secret": "client-secret"}]}],
            })),
            vec![],
            API_URL,
        )
        .unwrap();

        let exported = export(&store);

        let text = exported.to_string();
        assert!(
            !text.contains("project-secret") && !text.contains("client-secret"),
            "{text}"
        );
        assert_eq!(
            exported["projects"][0]["secret"],
            redact::fingerprint("project-secret")
        );
        let connection = &exported["organizations"][0]["connections"][0];
        assert_eq!(
            connection["client_secret"],
            redact::fingerprint("client-secret")
        );
    }

    #[test]
    fn project_arguments_split_at_the_first_colon() {
        let project = parse_project("project-test-1:se:cret").unwrap();
        assert_eq!(project.project_id, "project-test-1");
        assert_eq!(project.secret, "se:cret");
        assert!(parse_project("no-secret").is_err());
        assert!(parse_project(":secret").is_err());
    }
}
