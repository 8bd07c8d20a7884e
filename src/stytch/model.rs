//! Shapes of Stytch's B2B SSO requests and responses, as far as the operator uses them.

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize, Serializer};

/// Project credentials: HTTP Basic user and password for every Stytch call.
#[derive(Clone, Debug)]
pub struct ProjectCredentials {
    pub project_id: String,
    pub secret: SecretString,
}

/// One OIDC connection as Stytch reports it. Unset strings come back as `""`.
///
/// `client_secret` is deliberately absent: responses may carry it in clear, and the operator
/// never reads it back (it compares fingerprints of what it sent instead), so it is never
/// even deserialized into memory that could be logged.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct OidcConnection {
    pub organization_id: String,
    pub connection_id: String,
    pub status: String,
    pub display_name: String,
    pub redirect_url: String,
    pub client_id: String,
    pub issuer: String,
    pub authorization_url: String,
    pub token_url: String,
    pub userinfo_url: String,
    pub jwks_url: String,
    pub identity_provider: String,
    pub custom_scopes: String,
    pub attribute_mapping: Option<serde_json::Map<String, serde_json::Value>>,
}

/// Answer of `GET /v1/b2b/sso/{organization_id}`; only the OIDC part is kept.
#[derive(Clone, Debug, Deserialize)]
pub struct ListConnectionsResponse {
    pub request_id: String,
    #[serde(default)]
    pub oidc_connections: Vec<OidcConnection>,
}

/// Body of `PUT /v1/b2b/sso/oidc/{organization_id}/connections/{connection_id}`.
///
/// Every field is optional and absent fields are left unchanged by Stytch, so a request
/// carries exactly the fields that must change. `Debug` never shows the client secret.
#[derive(Clone, Debug, Default, Serialize)]
pub struct UpdateOidcConnectionRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "expose")]
    pub client_secret: Option<SecretString>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorization_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub userinfo_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity_provider: Option<String>,
    /// Stytch takes the scopes as one space-separated string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom_scopes: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attribute_mapping: Option<serde_json::Map<String, serde_json::Value>>,
}

fn expose<S: Serializer>(secret: &Option<SecretString>, serializer: S) -> Result<S::Ok, S::Error> {
    match secret {
        Some(secret) => serializer.serialize_str(secret.expose_secret()),
        None => serializer.serialize_none(),
    }
}

impl UpdateOidcConnectionRequest {
    /// Names (Stytch's) of the fields this request changes, for logs and Events.
    pub fn field_names(&self) -> Vec<&'static str> {
        let present = [
            ("display_name", self.display_name.is_some()),
            ("client_id", self.client_id.is_some()),
            ("client_secret", self.client_secret.is_some()),
            ("issuer", self.issuer.is_some()),
            ("authorization_url", self.authorization_url.is_some()),
            ("token_url", self.token_url.is_some()),
            ("userinfo_url", self.userinfo_url.is_some()),
            ("jwks_url", self.jwks_url.is_some()),
            ("identity_provider", self.identity_provider.is_some()),
            ("custom_scopes", self.custom_scopes.is_some()),
            ("attribute_mapping", self.attribute_mapping.is_some()),
        ];
        present
            .into_iter()
            .filter(|(_, set)| *set)
            .map(|(name, _)| name)
            .collect()
    }

    /// True when the request would change nothing, so it need not be sent.
    pub fn is_empty(&self) -> bool {
        self.field_names().is_empty()
    }
}

/// A member session, as a token or as a JWT; either proves the same session.
#[derive(Clone, Debug)]
pub struct MemberSession {
    pub kind: MemberSessionKind,
    pub value: SecretString,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberSessionKind {
    Token,
    Jwt,
}

impl MemberSession {
    /// The header that presents this session on an RBAC-enforced call.
    pub fn header_name(&self) -> &'static str {
        match self.kind {
            MemberSessionKind::Token => "X-Stytch-Member-Session",
            MemberSessionKind::Jwt => "X-Stytch-Member-SessionJWT",
        }
    }
}

/// Body of `POST /v1/b2b/sessions/authenticate`: exactly one of the two fields.
#[derive(Serialize)]
pub(crate) struct AuthenticateSessionRequest<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    session_token: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    session_jwt: Option<&'a str>,
}

impl<'a> AuthenticateSessionRequest<'a> {
    pub(crate) fn for_session(session: &'a MemberSession) -> Self {
        let value = Some(session.value.expose_secret());
        match session.kind {
            MemberSessionKind::Token => Self {
                session_token: value,
                session_jwt: None,
            },
            MemberSessionKind::Jwt => Self {
                session_token: None,
                session_jwt: value,
            },
        }
    }
}

/// What the operator reads from a session authentication: whose organization it is. The
/// session token and JWT Stytch sends back are not deserialized.
#[derive(Clone, Debug, Deserialize)]
pub struct AuthenticateSessionResponse {
    pub request_id: String,
    pub organization: AuthenticatedOrganization,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct AuthenticatedOrganization {
    pub organization_id: String,
    pub organization_slug: String,
}

/// Answer of a successful delete.
#[derive(Clone, Debug, Deserialize)]
pub struct DeleteConnectionResponse {
    pub request_id: String,
}

/// Answer of a successful update.
#[derive(Clone, Debug, Deserialize)]
pub struct UpdateOidcConnectionResponse {
    pub request_id: String,
    pub connection: OidcConnection,
    /// Set when the update applied but something went wrong, e.g. issuer discovery failed.
    #[serde(default)]
    pub warning: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_request_sends_only_fields_that_are_set() {
        let request = UpdateOidcConnectionRequest {
            display_name: Some("Acme".into()),
            client_secret: Some(SecretString::from("s3cr3t-value")),
            ..Default::default()
        };
        let body = serde_json::to_value(&request).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"display_name": "Acme", "client_secret": "s3cr3t-value"})
        );
        assert_eq!(request.field_names(), ["display_name", "client_secret"]);
    }

    #[test]
    fn update_request_debug_redacts_the_client_secret() {
        let request = UpdateOidcConnectionRequest {
            client_secret: Some(SecretString::from("s3cr3t-value")),
            ..Default::default()
        };
        assert!(!format!("{request:?}").contains("s3cr3t-value"));
    }

    #[test]
    fn connection_ignores_the_client_secret_stytch_returns() {
        let json = r#"{"connection_id":"c","client_secret":"s3cr3t-value","status":"active"}"#;
        let connection: OidcConnection = serde_json::from_str(json).unwrap();
        assert_eq!(connection.status, "active");
        assert!(!format!("{connection:?}").contains("s3cr3t-value"));
    }
}
