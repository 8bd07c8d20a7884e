//! The `OidcConnection` custom resource: one Stytch B2B OIDC SSO connection, kept as code.
//!
//! # What the schema guarantees
//! The API server refuses, at `kubectl apply` time, what Stytch would refuse: empty ids, an
//! unknown identity provider, an issuer or endpoint that is not an `https://` URL, scopes that
//! would not survive being joined with spaces. `organizationId` and `connectionId` cannot change
//! after creation: pointing an existing object at another connection would silently hand that
//! connection over, so a new object must be made instead.
//!
//! # Ownership
//! Only fields set in the spec are owned. A field left out is never sent to Stytch, so values
//! Stytch discovered from the issuer are reported, never "corrected".

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

/// API group of every resource this operator serves.
pub const GROUP: &str = "sso.stytch-operator.dev";
/// Name used as field manager for server-side apply and as the Event reporter.
pub const MANAGER: &str = "stytch-sso-operator";

/// Rule shared by the issuer and every endpoint: an absolute `https://` URL.
/// (`startsWith` as well: the URL library lower-cases the scheme, Stytch does not accept
/// `HTTPS://`; and a host is required, which `isURL` does not insist on.)
const HTTPS_URL_RULE: &str =
    "self.startsWith('https://') && isURL(self) && url(self).getHostname() != ''";

/// Desired state of one Stytch OIDC connection.
// Each printcolumn repeats `type_` and `priority`, which clippy mistakes for duplicates.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "sso.stytch-operator.dev",
    version = "v1alpha1",
    kind = "OidcConnection",
    plural = "oidcconnections",
    shortname = "oidcconn",
    category = "stytch",
    namespaced,
    status = "OidcConnectionStatus",
    derive = "PartialEq",
    doc = "A Stytch B2B OIDC SSO connection whose settings are kept in Kubernetes.",
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status",
        description = "Whether the connection is in sync and active in Stytch"
    ),
    printcolumn(
        name = "Status",
        type_ = "string",
        json_path = ".status.connectionStatus",
        description = "Stytch's own status of the connection: active or pending"
    ),
    printcolumn(
        name = "Connection",
        type_ = "string",
        json_path = ".spec.connectionId",
        description = "Stytch connection id"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    ),
    printcolumn(
        name = "Organization",
        type_ = "string",
        json_path = ".spec.organizationId",
        description = "Stytch organization id, slug or external id",
        priority = "1"
    ),
    printcolumn(
        name = "Provider",
        type_ = "string",
        json_path = ".spec.identityProvider",
        description = "Identity provider",
        priority = "1"
    ),
    printcolumn(
        name = "Reason",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].reason",
        description = "Why the connection is or is not ready",
        priority = "1"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.organizationId) || has(self.memberSessionRef)")
    .message("set organizationId, or memberSessionRef to take the organization from the member's session"))]
#[x_kube(validation = Rule::new("has(self.organizationId) == has(oldSelf.organizationId)")
    .message("organizationId cannot be added or removed after creation"))]
pub struct OidcConnectionSpec {
    /// Stytch organization that owns the connection: its id, slug or external id. Immutable.
    /// May be left out when `memberSessionRef` is set: the organization is then the member's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128), regex(pattern = r"\S"))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("organizationId is immutable"))]
    pub organization_id: Option<String>,

    /// Stytch connection id, for example `oidc-connection-test-...`. The connection must
    /// already exist in Stytch. Immutable.
    #[schemars(length(min = 1, max = 128), regex(pattern = r"^\S+$"))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("connectionId is immutable"))]
    pub connection_id: String,

    /// Identity provider that issues the tokens; Stytch uses it to tailor its behaviour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = drop_null_from_enum)]
    pub identity_provider: Option<IdentityProvider>,

    /// Human-readable name of the connection, shown to members in Stytch's UI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256))]
    pub display_name: Option<String>,

    /// Issuer URL of the identity provider (`https://` only, case-sensitive). When it changes,
    /// Stytch discovers the four endpoint URLs from its OpenID configuration document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(validation = Rule::new(HTTPS_URL_RULE).message("issuer must be an https:// URL"))]
    pub issuer: Option<String>,

    /// OAuth client id registered at the identity provider for this connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024))]
    pub client_id: Option<String>,

    /// Key of a Secret, in this object's namespace, that holds the OAuth client secret.
    /// Its value is sent to Stytch whenever it changes and is never shown anywhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_ref: Option<SecretKeyRef>,

    /// Authorization endpoint. Leave unset to keep what Stytch discovered from the issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(validation = Rule::new(HTTPS_URL_RULE).message("authorizationUrl must be an https:// URL"))]
    pub authorization_url: Option<String>,

    /// Token endpoint. Leave unset to keep what Stytch discovered from the issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(validation = Rule::new(HTTPS_URL_RULE).message("tokenUrl must be an https:// URL"))]
    pub token_url: Option<String>,

    /// Userinfo endpoint. Leave unset to keep what Stytch discovered from the issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(validation = Rule::new(HTTPS_URL_RULE).message("userinfoUrl must be an https:// URL"))]
    pub userinfo_url: Option<String>,

    /// JSON Web Key Set endpoint. Leave unset to keep what Stytch discovered from the issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(validation = Rule::new(HTTPS_URL_RULE).message("jwksUrl must be an https:// URL"))]
    pub jwks_url: Option<String>,

    /// Extra OAuth scopes to request beyond Stytch's defaults, one scope per item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 64),
        inner(length(min = 1, max = 256), regex(pattern = r"^\S+$"))
    )]
    pub custom_scopes: Option<Vec<String>>,

    /// Maps Stytch member attributes to claim names of the identity provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribute_mapping: Option<BTreeMap<String, String>>,

    /// Key of a Secret, in this object's namespace, holding a Stytch member session (a session
    /// token, or a session JWT with `type: jwt`). Every call for this object is then made with
    /// the member's authority: Stytch checks the member's roles and organization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member_session_ref: Option<MemberSessionRef>,

    /// Secret, in this object's namespace, with the Stytch project credentials to use for this
    /// object (keys `project_id` and `secret`), instead of the operator's default ones: one
    /// operator can serve several Stytch projects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_ref: Option<LocalSecretRef>,

    /// How often the operator compares Stytch with this spec when nothing else triggers it,
    /// as a duration such as `10m` or `1h30m`. Bounds how long a change made outside
    /// Kubernetes can last. Defaults to the operator's `--resync-interval` (10m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+(ms|s|m|h))+$"))]
    // The pattern is checked first; the rule must not parse what the pattern refused.
    #[x_kube(validation = Rule::new("!self.matches('^([0-9]+(ms|s|m|h))+$') || duration(self) >= duration('1s')").message("resyncInterval must be at least 1s"))]
    pub resync_interval: Option<String>,

    /// `Update` (default) writes differences to Stytch. `ObserveOnly` only reports them, by
    /// field name, in `status.pendingChanges`, and never writes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = drop_null_from_enum)]
    pub management_policy: Option<ManagementPolicy>,

    /// What deleting this object does to the connection in Stytch. `Orphan` (default) leaves it
    /// as it is and needs no credentials. `Delete` deletes it in Stytch first (through a
    /// finalizer); the object stays until that succeeds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = drop_null_from_enum)]
    pub deletion_policy: Option<DeletionPolicy>,
}

/// Names a Secret in the same namespace as the `OidcConnection`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, KubeSchema)]
pub struct LocalSecretRef {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// Where a member session is kept, and which kind it is.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, KubeSchema)]
pub struct MemberSessionRef {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key inside the Secret's data.
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[-._a-zA-Z0-9]+$"))]
    pub key: String,
    /// `token` (default): a session token, sent as `X-Stytch-Member-Session`. `jwt`: a session
    /// JWT, sent as `X-Stytch-Member-SessionJWT`.
    #[serde(default, rename = "type")]
    pub type_: MemberSessionType,
}

/// The two forms of a Stytch member session.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum MemberSessionType {
    #[default]
    Token,
    Jwt,
}

/// Whether the operator may write to Stytch.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
pub enum ManagementPolicy {
    #[default]
    Update,
    ObserveOnly,
}

/// What deleting an `OidcConnection` does in Stytch.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
pub enum DeletionPolicy {
    #[default]
    Orphan,
    Delete,
}

/// An optional enum is nullable already; listing `null` among its values as well would only
/// clutter `kubectl explain` and the API server's "supported values" message.
fn drop_null_from_enum(schema: &mut schemars::Schema) {
    if let Some(serde_json::Value::Array(values)) = schema.get_mut("enum") {
        values.retain(|value| !value.is_null());
    }
}

/// Names one key of a Secret in the same namespace as the `OidcConnection`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, KubeSchema)]
pub struct SecretKeyRef {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key inside the Secret's data.
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[-._a-zA-Z0-9]+$"))]
    pub key: String,
}

/// Identity providers Stytch accepts, spelled exactly as Stytch's API spells them.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum IdentityProvider {
    Classlink,
    Cyberark,
    Duo,
    Generic,
    GoogleWorkspace,
    Jumpcloud,
    Keycloak,
    Miniorange,
    MicrosoftEntra,
    Okta,
    Onelogin,
    Pingfederate,
    Rippling,
    Salesforce,
    Shibboleth,
}

impl IdentityProvider {
    /// Every provider, in the order of the schema's enum.
    pub const ALL: [Self; 15] = [
        Self::Classlink,
        Self::Cyberark,
        Self::Duo,
        Self::Generic,
        Self::GoogleWorkspace,
        Self::Jumpcloud,
        Self::Keycloak,
        Self::Miniorange,
        Self::MicrosoftEntra,
        Self::Okta,
        Self::Onelogin,
        Self::Pingfederate,
        Self::Rippling,
        Self::Salesforce,
        Self::Shibboleth,
    ];

    /// The value Stytch's API uses for this provider.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Classlink => "classlink",
            Self::Cyberark => "cyberark",
            Self::Duo => "duo",
            Self::Generic => "generic",
            Self::GoogleWorkspace => "google-workspace",
            Self::Jumpcloud => "jumpcloud",
            Self::Keycloak => "keycloak",
            Self::Miniorange => "miniorange",
            Self::MicrosoftEntra => "microsoft-entra",
            Self::Okta => "okta",
            Self::Onelogin => "onelogin",
            Self::Pingfederate => "pingfederate",
            Self::Rippling => "rippling",
            Self::Salesforce => "salesforce",
            Self::Shibboleth => "shibboleth",
        }
    }
}

/// What the operator last saw and did. Written only by the operator.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct OidcConnectionStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// Stytch's own status of the connection: `active` or `pending`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_status: Option<String>,

    /// True when Stytch reports the connection as `active`, so members can sign in with it.
    #[serde(default)]
    pub active: bool,

    /// Stytch `request_id` of the last call that changed the connection, or of the
    /// observation that first found it in sync. Quote it to Stytch support.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,

    /// Callback URL to register at the identity provider as an allowed redirect URI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_url: Option<String>,

    /// Spec fields whose values Stytch still lacks, keeping a pending connection from
    /// becoming active (for example `authorizationUrl` when issuer discovery failed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing_fields: Vec<String>,

    /// Warning Stytch returned with the last update, for example that issuer discovery failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,

    /// Fingerprint (`sha256:` + 16 hex digits) of the client secret last sent to Stytch;
    /// never the secret itself. A different fingerprint means the secret will be sent again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_version: Option<String>,

    /// When the operator last changed the connection in Stytch or saw it change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync_time: Option<Time>,

    /// With `managementPolicy: ObserveOnly`: the spec fields whose values differ in Stytch and
    /// would be written under `Update`. Names only, never values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending_changes: Vec<String>,

    /// The value of the annotation `sso.stytch-operator.dev/reconcile-requested-at` that the
    /// last reconcile handled; set it to any new value to force a reconcile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,

    /// The organization's id as Stytch reported it for the member session, when the spec
    /// leaves the organization to the session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_id: Option<String>,

    /// `Ready`: the connection matches the spec and is active in Stytch. `Synced`: the last
    /// attempt to make Stytch match the spec succeeded. Each with a reason and a message.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}

/// Finalizer that holds an object with `deletionPolicy: Delete` until its connection is deleted
/// in Stytch.
pub const FINALIZER: &str = "sso.stytch-operator.dev/cleanup";

impl OidcConnection {
    pub fn management_policy(&self) -> ManagementPolicy {
        self.spec.management_policy.unwrap_or_default()
    }

    pub fn deletion_policy(&self) -> DeletionPolicy {
        self.spec.deletion_policy.unwrap_or_default()
    }

    pub fn has_finalizer(&self) -> bool {
        self.metadata
            .finalizers
            .iter()
            .flatten()
            .any(|f| f == FINALIZER)
    }

    /// The organization of the connection: from the spec, or, when the spec leaves it to the
    /// member session, as last learned from Stytch.
    pub fn organization_id(&self) -> Option<&str> {
        let learned = self
            .status
            .as_ref()
            .and_then(|s| s.organization_id.as_deref());
        self.spec.organization_id.as_deref().or(learned)
    }

    /// The Stytch connection this object manages: (organization, if known, and connection).
    pub fn target(&self) -> (Option<&str>, &str) {
        (self.organization_id(), &self.spec.connection_id)
    }

    /// Whether this object reads the given Secret (in its own namespace).
    pub fn references_secret(&self, namespace: &str, name: &str) -> bool {
        let spec = &self.spec;
        let names = [
            spec.client_secret_ref.as_ref().map(|r| r.name.as_str()),
            spec.member_session_ref.as_ref().map(|r| r.name.as_str()),
            spec.credentials_ref.as_ref().map(|r| r.name.as_str()),
        ];
        self.metadata.namespace.as_deref() == Some(namespace) && names.contains(&Some(name))
    }
}

#[cfg(test)]
mod tests {
    use kube::CustomResourceExt;

    use super::*;

    #[test]
    fn identity_providers_serialize_as_stytch_spells_them() {
        for provider in [
            IdentityProvider::GoogleWorkspace,
            IdentityProvider::MicrosoftEntra,
        ] {
            let json = serde_json::to_value(provider).unwrap();
            assert_eq!(json, provider.as_str());
        }
    }

    #[test]
    fn schema_lists_all_fifteen_identity_providers() {
        let crd = serde_json::to_value(OidcConnection::crd()).unwrap();
        let providers = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
            ["properties"]["identityProvider"]["enum"];
        let names: Vec<&str> = providers
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|v| v.as_str())
            .collect();
        assert_eq!(names.len(), 15, "{providers}");
        assert!(names.contains(&"google-workspace"));
        let listed: Vec<&str> = IdentityProvider::ALL.iter().map(|p| p.as_str()).collect();
        assert_eq!(
            names, listed,
            "IdentityProvider::ALL follows the schema's enum"
        );
    }

    #[test]
    fn ids_are_required_and_immutable() {
        let crd = serde_json::to_value(OidcConnection::crd()).unwrap();
        let spec = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
        let required = spec["required"].as_array().unwrap();
        assert!(required.contains(&"connectionId".into()));
        for id in ["organizationId", "connectionId"] {
            let rules = spec["properties"][id]["x-kubernetes-validations"].to_string();
            assert!(rules.contains("self == oldSelf"), "{id}: {rules}");
        }
        // organizationId may be left to a member session, but one of the two is required.
        let rules = spec["x-kubernetes-validations"].to_string();
        assert!(
            rules.contains("has(self.organizationId) || has(self.memberSessionRef)"),
            "{rules}"
        );
    }

    #[test]
    fn an_object_references_only_secrets_in_its_own_namespace() {
        let mut object = OidcConnection::new(
            "acme",
            OidcConnectionSpec {
                client_secret_ref: Some(SecretKeyRef {
                    name: "acme-oidc".into(),
                    key: "client_secret".into(),
                }),
                ..Default::default()
            },
        );
        object.metadata.namespace = Some("identity".into());
        assert!(object.references_secret("identity", "acme-oidc"));
        assert!(!object.references_secret("other", "acme-oidc"));
        assert!(!object.references_secret("identity", "other"));
    }
}
