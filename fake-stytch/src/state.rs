//! The fake's model: projects, organizations and their OIDC connections, and the activation
//! rule that derives a connection's status. Members, their sessions and the roles that decide
//! what a member may do are in [`crate::sessions`] and [`crate::rbac`].
//!
//! Status is never stored: it is computed from the fields each time a connection is shown, so
//! no code path (API update, admin patch, seed) can leave it stale.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{
    rbac::Role,
    redact,
    sessions::{Member, Session},
    unconfirmed,
};

/// The `identity_provider` values Stytch accepts for OIDC connections.
pub const IDENTITY_PROVIDERS: [&str; 15] = [
    "classlink",
    "cyberark",
    "duo",
    "generic",
    "google-workspace",
    "jumpcloud",
    "keycloak",
    "miniorange",
    "microsoft-entra",
    "okta",
    "onelogin",
    "pingfederate",
    "rippling",
    "salesforce",
    "shibboleth",
];

/// A Stytch project: the Basic-auth credentials a caller must present.
#[derive(Clone, PartialEq, Eq)]
pub struct Project {
    pub project_id: String,
    pub secret: String,
}

/// Shows the project id only, so a stray `{:?}` cannot print a secret.
impl std::fmt::Debug for Project {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Project")
            .field("project_id", &self.project_id)
            .finish_non_exhaustive()
    }
}

/// Everything the fake knows.
#[derive(Clone, Debug, Default)]
pub struct Store {
    pub projects: Vec<Project>,
    pub organizations: Vec<Organization>,
    /// The roles defined on top of the built-in ones; see [`crate::rbac`].
    pub roles: Vec<Role>,
    /// Live, expired and never-used member sessions alike; revoking one removes it.
    pub sessions: Vec<Session>,
}

#[derive(Clone, Debug, Default)]
pub struct Organization {
    pub organization_id: String,
    /// `""` when the organization has none.
    pub slug: String,
    /// `""` when the organization has none.
    pub external_id: String,
    /// `organization_name`; `""` when the organization has none.
    pub name: String,
    pub connections: Vec<Connection>,
    pub members: Vec<Member>,
}

/// An OIDC connection. Unset strings are `""`, as Stytch returns them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Connection {
    pub organization_id: String,
    pub connection_id: String,
    pub display_name: String,
    pub redirect_url: String,
    pub client_id: String,
    pub client_secret: String,
    pub issuer: String,
    pub authorization_url: String,
    pub token_url: String,
    pub userinfo_url: String,
    pub jwks_url: String,
    pub identity_provider: String,
    pub custom_scopes: String,
    pub attribute_mapping: Map<String, Value>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pending,
    Active,
}

/// How a connection's `client_secret` is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretView {
    /// In clear, as the Stytch API returns it.
    Clear,
    /// As a fingerprint, for the admin API.
    Fingerprint,
}

/// A set of connection fields to change. `None` (absent or `null` in JSON) leaves a field as it
/// is; see [`unconfirmed::apply_string_change`] for what `""` does.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ConnectionChanges {
    pub display_name: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub issuer: Option<String>,
    pub authorization_url: Option<String>,
    pub token_url: Option<String>,
    pub userinfo_url: Option<String>,
    pub jwks_url: Option<String>,
    pub identity_provider: Option<String>,
    pub custom_scopes: Option<String>,
    pub attribute_mapping: Option<Map<String, Value>>,
}

/// The endpoints an issuer's discovery document announced. A field it lacked is `None`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DiscoveredUrls {
    pub authorization_url: Option<String>,
    pub token_url: Option<String>,
    pub userinfo_url: Option<String>,
    pub jwks_url: Option<String>,
}

impl Store {
    /// Finds an organization by id, slug or external id, in that order of precedence.
    pub fn organization(&self, reference: &str) -> Option<&Organization> {
        self.organization_index(reference)
            .map(|index| &self.organizations[index])
    }

    pub fn organization_mut(&mut self, reference: &str) -> Option<&mut Organization> {
        self.organization_index(reference)
            .map(|index| &mut self.organizations[index])
    }

    fn organization_index(&self, reference: &str) -> Option<usize> {
        if reference.is_empty() {
            return None;
        }

        let by = |key: fn(&Organization) -> &str| {
            self.organizations
                .iter()
                .position(|organization| key(organization) == reference)
        };
        by(|o| o.organization_id.as_str())
            .or_else(|| by(|o| o.slug.as_str()))
            .or_else(|| by(|o| o.external_id.as_str()))
    }

    /// Whether the Basic-auth credentials belong to a configured project.
    pub fn authenticates(&self, project_id: &str, secret: &str) -> bool {
        self.projects
            .iter()
            .any(|project| project.project_id == project_id && project.secret == secret)
    }
}

impl Organization {
    pub fn connection(&self, connection_id: &str) -> Option<&Connection> {
        self.connections
            .iter()
            .find(|connection| connection.connection_id == connection_id)
    }

    pub fn connection_mut(&mut self, connection_id: &str) -> Option<&mut Connection> {
        self.connections
            .iter_mut()
            .find(|connection| connection.connection_id == connection_id)
    }
}

impl Connection {
    /// A connection with identity fields set and everything else unset.
    pub fn new(organization_id: &str, connection_id: &str, redirect_url: String) -> Self {
        Self {
            organization_id: organization_id.to_owned(),
            connection_id: connection_id.to_owned(),
            redirect_url,
            ..Self::default()
        }
    }

    /// The activation rule: a connection is active once all seven fields Stytch needs to run an
    /// OIDC login are set, and pending until then.
    pub fn status(&self) -> Status {
        let required = [
            &self.issuer,
            &self.client_id,
            &self.client_secret,
            &self.authorization_url,
            &self.token_url,
            &self.userinfo_url,
            &self.jwks_url,
        ];
        if required.iter().all(|value| !value.is_empty()) {
            Status::Active
        } else {
            Status::Pending
        }
    }

    pub fn apply(&mut self, changes: &ConnectionChanges) {
        let fields = [
            (&mut self.display_name, &changes.display_name),
            (&mut self.client_id, &changes.client_id),
            (&mut self.client_secret, &changes.client_secret),
            (&mut self.issuer, &changes.issuer),
            (&mut self.authorization_url, &changes.authorization_url),
            (&mut self.token_url, &changes.token_url),
            (&mut self.userinfo_url, &changes.userinfo_url),
            (&mut self.jwks_url, &changes.jwks_url),
            (&mut self.identity_provider, &changes.identity_provider),
            (&mut self.custom_scopes, &changes.custom_scopes),
        ];
        for (field, change) in fields {
            unconfirmed::apply_string_change(field, change.as_deref());
        }

        if let Some(mapping) = &changes.attribute_mapping {
            self.attribute_mapping.clone_from(mapping);
        }
    }

    /// The connection as Stytch shows it, status included.
    pub fn to_json(&self, secrets: SecretView) -> Value {
        let client_secret = match secrets {
            SecretView::Clear => Cow::Borrowed(self.client_secret.as_str()),
            SecretView::Fingerprint => Cow::Owned(redact::conceal(&self.client_secret)),
        };
        let shown = ConnectionJson {
            organization_id: &self.organization_id,
            connection_id: &self.connection_id,
            status: self.status(),
            display_name: &self.display_name,
            redirect_url: &self.redirect_url,
            client_id: &self.client_id,
            client_secret,
            issuer: &self.issuer,
            authorization_url: &self.authorization_url,
            token_url: &self.token_url,
            userinfo_url: &self.userinfo_url,
            jwks_url: &self.jwks_url,
            identity_provider: &self.identity_provider,
            custom_scopes: &self.custom_scopes,
            attribute_mapping: &self.attribute_mapping,
        };
        serde_json::to_value(shown).unwrap_or(Value::Null)
    }
}

#[derive(Serialize)]
struct ConnectionJson<'a> {
    organization_id: &'a str,
    connection_id: &'a str,
    status: Status,
    display_name: &'a str,
    redirect_url: &'a str,
    client_id: &'a str,
    client_secret: Cow<'a, str>,
    issuer: &'a str,
    authorization_url: &'a str,
    token_url: &'a str,
    userinfo_url: &'a str,
    jwks_url: &'a str,
    identity_provider: &'a str,
    custom_scopes: &'a str,
    attribute_mapping: &'a Map<String, Value>,
}

impl ConnectionChanges {
    /// The new issuer when this change sets one that differs from `current`: the only case in
    /// which Stytch runs issuer discovery. Clearing the issuer discovers nothing.
    pub fn new_issuer(&self, current: &str) -> Option<&str> {
        self.issuer
            .as_deref()
            .filter(|issuer| !issuer.is_empty() && *issuer != current)
    }

    /// Takes the discovered endpoints for every URL this change does not set itself: URLs given
    /// explicitly in the same request win.
    pub fn fill_discovered(&mut self, discovered: DiscoveredUrls) {
        let fields = [
            (&mut self.authorization_url, discovered.authorization_url),
            (&mut self.token_url, discovered.token_url),
            (&mut self.userinfo_url, discovered.userinfo_url),
            (&mut self.jwks_url, discovered.jwks_url),
        ];
        for (field, found) in fields {
            if field.is_none() {
                *field = found;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete_connection() -> Connection {
        Connection {
            issuer: "https://idp.example/t".into(),
            client_id: "client".into(),
            client_secret: "s3cret".into(),
            authorization_url: "https://idp.example/t/authorize".into(),
            token_url: "https://idp.example/t/token".into(),
            userinfo_url: "https://idp.example/t/userinfo".into(),
            jwks_url: "https://idp.example/t/keys".into(),
            ..Connection::new("org", "conn", String::new())
        }
    }

    fn organizations() -> Store {
        let named = |id: &str, slug: &str, external_id: &str| Organization {
            organization_id: id.into(),
            slug: slug.into(),
            external_id: external_id.into(),
            ..Organization::default()
        };
        Store {
            organizations: vec![
                named("organization-test-1", "acme", "acme-ext"),
                named("organization-test-2", "organization-test-1", ""),
            ],
            ..Store::default()
        }
    }

    #[test]
    fn a_connection_with_all_seven_fields_set_is_active() {
        assert_eq!(complete_connection().status(), Status::Active);
    }

    #[test]
    fn a_connection_missing_any_one_of_the_seven_fields_is_pending() {
        let clearers: [fn(&mut Connection); 7] = [
            |c| c.issuer.clear(),
            |c| c.client_id.clear(),
            |c| c.client_secret.clear(),
            |c| c.authorization_url.clear(),
            |c| c.token_url.clear(),
            |c| c.userinfo_url.clear(),
            |c| c.jwks_url.clear(),
        ];
        for clear in clearers {
            let mut connection = complete_connection();
            clear(&mut connection);
            assert_eq!(connection.status(), Status::Pending, "{connection:?}");
        }
    }

    #[test]
    fn display_name_and_scopes_do_not_affect_activation() {
        let mut connection = complete_connection();
        connection.display_name.clear();
        connection.identity_provider.clear();
        connection.custom_scopes.clear();
        assert_eq!(connection.status(), Status::Active);
    }

    #[test]
    fn absent_fields_are_left_unchanged_and_empty_strings_clear() {
        let mut connection = complete_connection();
        let changes = ConnectionChanges {
            client_id: Some(String::new()),
            display_name: Some("Renamed".into()),
            ..ConnectionChanges::default()
        };

        connection.apply(&changes);

        assert_eq!(connection.client_id, "");
        assert_eq!(connection.display_name, "Renamed");
        assert_eq!(connection.issuer, "https://idp.example/t");
        assert_eq!(connection.status(), Status::Pending);
    }

    #[test]
    fn null_in_json_means_unchanged() {
        let changes: ConnectionChanges =
            serde_json::from_value(serde_json::json!({"client_id": null})).unwrap();
        let mut connection = complete_connection();
        connection.apply(&changes);
        assert_eq!(connection.client_id, "client");
    }

    #[test]
    fn organizations_are_found_by_id_slug_or_external_id() {
        let store = organizations();
        for reference in ["organization-test-1", "acme", "acme-ext"] {
            let found = store
                .organization(reference)
                .map(|o| o.organization_id.as_str());
            assert_eq!(found, Some("organization-test-1"), "{reference}");
        }
        assert!(store.organization("nope").is_none());
        assert!(
            store.organization("").is_none(),
            "empty slugs must not match an empty path"
        );
    }

    #[test]
    fn an_organization_id_wins_over_another_organizations_slug() {
        let store = organizations();
        let found = store
            .organization("organization-test-1")
            .map(|o| o.slug.as_str());
        assert_eq!(found, Some("acme"));
    }

    #[test]
    fn discovery_runs_only_when_the_issuer_changes_to_a_non_empty_value() {
        let changes = |issuer: Option<&str>| ConnectionChanges {
            issuer: issuer.map(str::to_owned),
            ..ConnectionChanges::default()
        };
        assert_eq!(
            changes(Some("https://b")).new_issuer("https://a"),
            Some("https://b")
        );
        assert_eq!(changes(Some("https://a")).new_issuer("https://a"), None);
        assert_eq!(changes(Some("")).new_issuer("https://a"), None);
        assert_eq!(changes(None).new_issuer("https://a"), None);
    }

    #[test]
    fn explicit_urls_win_over_discovered_ones() {
        let mut changes = ConnectionChanges {
            token_url: Some("https://explicit/token".into()),
            jwks_url: Some(String::new()),
            ..ConnectionChanges::default()
        };
        changes.fill_discovered(DiscoveredUrls {
            authorization_url: Some("https://found/authorize".into()),
            token_url: Some("https://found/token".into()),
            userinfo_url: None,
            jwks_url: Some("https://found/keys".into()),
        });

        assert_eq!(
            changes.authorization_url.as_deref(),
            Some("https://found/authorize")
        );
        assert_eq!(changes.token_url.as_deref(), Some("https://explicit/token"));
        assert_eq!(changes.userinfo_url, None);
        assert_eq!(changes.jwks_url.as_deref(), Some(""));
    }

    #[test]
    fn the_admin_view_shows_a_fingerprint_instead_of_the_client_secret() {
        let connection = complete_connection();
        let clear = connection.to_json(SecretView::Clear);
        let redacted = connection.to_json(SecretView::Fingerprint);

        assert_eq!(clear["client_secret"], "s3cret");
        assert_eq!(redacted["client_secret"], redact::fingerprint("s3cret"));
        assert!(!redacted.to_string().contains("s3cret"));
        assert_eq!(redacted["status"], "active");
    }
}
