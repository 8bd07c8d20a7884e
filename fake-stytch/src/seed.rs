//! The seed format: the JSON that `--seed`, `PUT /_fake/state` and `POST /_fake/organizations`
//! take, and that `GET /_fake/state` returns with its secrets replaced by fingerprints.
//!
//! A connection in a seed may carry any connection field; missing strings are `""`, a missing
//! `connection_id` is generated, a missing `redirect_url` is the one the fake would have given
//! the connection at creation. `status` is ignored: it always follows from the fields.
//!
//! Members belong to an organization; a missing `member_id` is generated. Sessions are listed
//! at the top level and name their member, whose organization they act in; their token and JWT
//! are required (a generated one could never be learnt, since the state view shows only
//! fingerprints), and a missing `expires_at` is [`SEEDED_SESSION_LIFETIME`] after loading.

use std::collections::HashSet;

use jiff::Timestamp;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{
    ids,
    rbac::{self, Role},
    redact,
    sessions::{self, Member, SEEDED_SESSION_LIFETIME, Session},
    state::{Connection, ConnectionChanges, Organization, Project, SecretView, Store},
    unconfirmed,
};

#[derive(Clone, Debug, Default, Deserialize)]
pub struct Seed {
    /// `None` when the document has no `projects` key: replacing the state then keeps the
    /// projects already configured, so a test cannot lock itself out by accident.
    #[serde(default)]
    pub projects: Option<Vec<ProjectSeed>>,
    /// Roles defined on top of the built-in ones. `None` (no `roles` key) keeps the roles
    /// already defined, as for projects.
    #[serde(default)]
    pub roles: Option<Vec<Role>>,
    #[serde(default)]
    pub organizations: Vec<OrganizationSeed>,
    /// Always replaced: the members they belong to are replaced with the organizations.
    #[serde(default)]
    pub sessions: Vec<SessionSeed>,
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
    /// `organization_name`.
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub connections: Vec<ConnectionSeed>,
    #[serde(default)]
    pub members: Vec<MemberSeed>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberSeed {
    #[serde(default)]
    pub member_id: Option<String>,
    #[serde(default)]
    pub email_address: String,
    #[serde(default)]
    pub roles: Vec<String>,
}

/// A session in a seed. Other keys (such as the `organization_id` the state view shows) are
/// ignored: the organization is always the member's.
#[derive(Clone, Deserialize)]
pub struct SessionSeed {
    #[serde(default)]
    pub member_session_id: Option<String>,
    pub session_token: String,
    pub session_jwt: String,
    pub member_id: String,
    /// RFC 3339.
    #[serde(default)]
    pub expires_at: Option<String>,
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
    #[error("member id {0:?} appears twice")]
    DuplicateMember(String),
    #[error("roles: {0}")]
    InvalidRoles(String),
    #[error("session {index} names member {member_id:?}, which no organization has")]
    UnknownMember { index: usize, member_id: String },
    #[error("session {index} needs a non-empty session_token and session_jwt")]
    EmptySessionSecret { index: usize },
    #[error("session {index} uses a session token or JWT that another session uses")]
    DuplicateSessionSecret { index: usize },
    #[error("session {index}: expires_at {value:?} is not an RFC 3339 time ({reason})")]
    InvalidExpiry {
        index: usize,
        value: String,
        reason: String,
    },
}

/// Shows neither the token nor the JWT.
impl std::fmt::Debug for SessionSeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionSeed")
            .field("member_id", &self.member_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
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
            name: self.name,
            connections,
            members: self.members.into_iter().map(MemberSeed::build).collect(),
        }
    }
}

impl MemberSeed {
    pub fn build(self) -> Member {
        Member {
            member_id: self.member_id.unwrap_or_else(ids::member_id),
            email_address: self.email_address,
            roles: self.roles,
        }
    }
}

impl SessionSeed {
    /// The session, in its member's organization. `index` names it in errors.
    fn build(self, store: &Store, index: usize, now: Timestamp) -> Result<Session, SeedError> {
        if self.session_token.is_empty() || self.session_jwt.is_empty() {
            return Err(SeedError::EmptySessionSecret { index });
        }
        let (organization, _) =
            store
                .member(&self.member_id)
                .ok_or_else(|| SeedError::UnknownMember {
                    index,
                    member_id: self.member_id.clone(),
                })?;
        let expires_at = match self.expires_at {
            Some(value) => parse_expiry(value, index)?,
            None => sessions::expiry_after(now, SEEDED_SESSION_LIFETIME),
        };

        Ok(Session {
            member_session_id: self
                .member_session_id
                .unwrap_or_else(ids::member_session_id),
            session_token: self.session_token,
            session_jwt: self.session_jwt,
            member_id: self.member_id,
            organization_id: organization.organization_id.clone(),
            expires_at,
        })
    }
}

fn parse_expiry(value: String, index: usize) -> Result<Timestamp, SeedError> {
    value
        .parse()
        .map_err(|error: jiff::Error| SeedError::InvalidExpiry {
            index,
            reason: error.to_string(),
            value,
        })
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

/// Builds a store from a seed. The projects and roles of `current` stand in when the seed has
/// no `projects` or no `roles` key.
pub fn build_store(seed: Seed, current: &Store, api_url: &str) -> Result<Store, SeedError> {
    let projects = match seed.projects {
        Some(seeded) => seeded.into_iter().map(Project::from).collect(),
        None => current.projects.clone(),
    };
    let roles = seed.roles.unwrap_or_else(|| current.roles.clone());
    rbac::check_roles(&roles).map_err(SeedError::InvalidRoles)?;
    let organizations: Vec<Organization> = seed
        .organizations
        .into_iter()
        .map(|seed| seed.build(api_url))
        .collect();
    check_unique(&organizations)?;

    let mut store = Store {
        projects,
        organizations,
        roles,
        sessions: vec![],
    };
    let now = Timestamp::now();
    let mut secrets = HashSet::new();
    for (index, seed) in seed.sessions.into_iter().enumerate() {
        let session = seed.build(&store, index, now)?;
        if !secrets.insert(session.session_token.clone())
            || !secrets.insert(session.session_jwt.clone())
        {
            return Err(SeedError::DuplicateSessionSecret { index });
        }
        store.sessions.push(session);
    }
    Ok(store)
}

/// Adds one organization unless one of its names, connection ids or member ids is already taken.
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
    let mut member_ids = HashSet::new();
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

        for member in &organization.members {
            if !member_ids.insert(member.member_id.as_str()) {
                return Err(SeedError::DuplicateMember(member.member_id.clone()));
            }
        }
    }
    Ok(())
}

/// The state in seed format, with every secret replaced by its fingerprint. `roles` holds the
/// defined roles only, as a seed would; `GET /_fake/roles` shows the built-in ones too.
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
    let sessions: Vec<Value> = store.sessions.iter().map(export_session).collect();
    json!({
        "projects": projects,
        "roles": store.roles,
        "organizations": organizations,
        "sessions": sessions,
    })
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
        "name": organization.name,
        "connections": connections,
        "members": organization.members,
    })
}

/// A session with its token and JWT as fingerprints.
pub fn export_session(session: &Session) -> Value {
    json!({
        "member_session_id": session.member_session_id,
        "session_token": redact::conceal(&session.session_token),
        "session_jwt": redact::conceal(&session.session_jwt),
        "member_id": session.member_id,
        "organization_id": session.organization_id,
        "expires_at": session.expires_at.to_string(),
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
            &Store::default(),
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
        let current = Store {
            projects: given.clone(),
            ..Store::default()
        };
        let store = build_store(seed(json!({"organizations": []})), &current, API_URL);
        assert_eq!(store.unwrap().projects, given);
    }

    #[test]
    fn two_organizations_with_the_same_slug_are_refused() {
        let built = build_store(
            seed(json!({"organizations": [{"slug": "acme"}, {"slug": "acme"}]})),
            &Store::default(),
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
            &Store::default(),
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

    fn rbac_seed() -> Value {
        json!({
            "roles": [{"role_id": "sso_viewer",
                       "permissions": [{"resource_id": "stytch.sso", "actions": ["get"]}]}],
            "organizations": [{
                "organization_id": "organization-test-1",
                "slug": "acme",
                "name": "Acme Inc",
                "members": [{"member_id": "member-test-1", "email_address": "a@acme.example",
                             "roles": ["sso_viewer"]}],
            }],
            "sessions": [{"session_token": "token-1", "session_jwt": "jwt-1",
                          "member_id": "member-test-1",
                          "expires_at": "2030-01-02T03:04:05Z"}],
        })
    }

    #[test]
    fn a_seed_with_roles_members_and_sessions_survives_a_round_trip_through_the_state_view() {
        let store = build_store(seed(rbac_seed()), &Store::default(), API_URL).unwrap();

        let exported = export(&store);
        let again = build_store(seed(exported.clone()), &Store::default(), API_URL).unwrap();

        assert_eq!(again.roles, store.roles);
        assert_eq!(
            again.organizations[0].members,
            store.organizations[0].members
        );
        assert_eq!(again.organizations[0].name, "Acme Inc");
        let (first, second) = (&store.sessions[0], &again.sessions[0]);
        assert_eq!(second.member_session_id, first.member_session_id);
        assert_eq!(second.organization_id, "organization-test-1");
        assert_eq!(second.expires_at.to_string(), "2030-01-02T03:04:05Z");
        let session = &exported["sessions"][0];
        assert_eq!(session["session_token"], redact::fingerprint("token-1"));
        assert_eq!(session["session_jwt"], redact::fingerprint("jwt-1"));
        assert!(!exported.to_string().contains("\"jwt-1\""));
    }

    #[test]
    fn a_seed_without_new_keys_has_no_members_sessions_or_defined_roles() {
        let store = build_store(
            seed(json!({"organizations": [{"slug": "acme"}]})),
            &Store::default(),
            API_URL,
        )
        .unwrap();

        assert!(store.roles.is_empty() && store.sessions.is_empty());
        assert!(store.organizations[0].members.is_empty());
        assert_eq!(store.effective_roles().len(), 2, "the built-in roles");
    }

    #[test]
    fn a_seeded_session_without_expiry_lives_a_day() {
        let mut value = rbac_seed();
        value["sessions"][0]
            .as_object_mut()
            .unwrap()
            .remove("expires_at");

        let store = build_store(seed(value), &Store::default(), API_URL).unwrap();

        let left = store.sessions[0].expires_at.as_second() - Timestamp::now().as_second();
        assert!((86_390..=86_400).contains(&left), "{left}");
    }

    #[test]
    fn replacing_the_state_without_roles_keeps_the_defined_ones() {
        let current = build_store(seed(rbac_seed()), &Store::default(), API_URL).unwrap();

        let replaced = build_store(seed(json!({})), &current, API_URL).unwrap();

        assert_eq!(replaced.roles, current.roles);
        assert!(replaced.sessions.is_empty());
    }

    #[test]
    fn sessions_that_make_lookups_ambiguous_or_name_no_member_are_refused() {
        let build = |edit: fn(&mut Value)| {
            let mut value = rbac_seed();
            edit(&mut value);
            build_store(seed(value), &Store::default(), API_URL).unwrap_err()
        };

        assert_eq!(
            build(|v| v["sessions"][0]["member_id"] = json!("member-test-x")),
            SeedError::UnknownMember {
                index: 0,
                member_id: "member-test-x".into()
            }
        );
        assert_eq!(
            build(|v| v["sessions"][0]["session_jwt"] = json!("")),
            SeedError::EmptySessionSecret { index: 0 }
        );
        assert_eq!(
            build(|v| {
                let copy = v["sessions"][0].clone();
                v["sessions"].as_array_mut().unwrap().push(copy);
            }),
            SeedError::DuplicateSessionSecret { index: 1 }
        );
        assert!(matches!(
            build(|v| v["sessions"][0]["expires_at"] = json!("tomorrow")),
            SeedError::InvalidExpiry { index: 0, .. }
        ));
        assert_eq!(
            build(|v| {
                let member = v["organizations"][0]["members"][0].clone();
                v["organizations"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"members": [member]}));
            }),
            SeedError::DuplicateMember("member-test-1".into())
        );
    }

    #[test]
    fn a_session_seed_error_never_shows_the_token() {
        let mut value = rbac_seed();
        value["sessions"][0]["member_id"] = json!("member-test-x");
        let parsed = seed(value);

        let shown = format!("{parsed:?}");
        let error = build_store(parsed, &Store::default(), API_URL).unwrap_err();

        assert!(!shown.contains("token-1"), "{shown}");
        assert!(!error.to_string().contains("token-1"));
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
