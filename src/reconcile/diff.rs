//! What must change in Stytch for it to match the spec: the update request, built from the
//! owned fields only.
//!
//! A field the spec leaves unset is never compared and never sent. The client secret cannot
//! be read back from Stytch (responses may mask it), so it is compared by fingerprint with the
//! one last sent, which the status remembers.

use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use crate::crd::OidcConnectionSpec;
use crate::stytch::{OidcConnection, UpdateOidcConnectionRequest};

/// A short, non-reversible identifier of a secret value: `sha256:` and 16 hex digits.
pub fn fingerprint(secret: &SecretString) -> String {
    let digest = Sha256::digest(secret.expose_secret().as_bytes());
    let hex: String = digest
        .iter()
        .take(8)
        .map(|byte| format!("{byte:02x}"))
        .collect();
    format!("sha256:{hex}")
}

/// The client secret as read from its Secret, with its fingerprint.
#[derive(Clone, Debug)]
pub struct ClientSecret {
    pub value: SecretString,
    pub fingerprint: String,
}

impl ClientSecret {
    pub fn new(value: SecretString) -> Self {
        let fingerprint = fingerprint(&value);
        Self { value, fingerprint }
    }
}

/// The update that makes `observed` match `spec`; empty when nothing differs.
pub fn changes(
    spec: &OidcConnectionSpec,
    observed: &OidcConnection,
    client_secret: Option<&ClientSecret>,
    last_sent_fingerprint: Option<&str>,
) -> UpdateOidcConnectionRequest {
    let differing = |desired: &Option<String>, actual: &str| {
        desired
            .as_ref()
            .filter(|desired| desired.as_str() != actual)
            .cloned()
    };

    let identity_provider = spec.identity_provider.map(|p| p.as_str().to_owned());
    let custom_scopes = spec.custom_scopes.as_ref().filter(|scopes| {
        let actual: Vec<&str> = observed.custom_scopes.split_whitespace().collect();
        **scopes != actual
    });
    let attribute_mapping = spec.attribute_mapping.as_ref().and_then(|desired| {
        let desired: serde_json::Map<String, serde_json::Value> = desired
            .iter()
            .map(|(k, v)| (k.clone(), v.clone().into()))
            .collect();
        let actual = observed.attribute_mapping.clone().unwrap_or_default();
        (desired != actual).then_some(desired)
    });
    let client_secret = client_secret
        .filter(|secret| {
            last_sent_fingerprint != Some(secret.fingerprint.as_str()) || lacks_secret(observed)
        })
        .map(|secret| secret.value.clone());

    UpdateOidcConnectionRequest {
        display_name: differing(&spec.display_name, &observed.display_name),
        client_id: differing(&spec.client_id, &observed.client_id),
        client_secret,
        issuer: differing(&spec.issuer, &observed.issuer),
        authorization_url: differing(&spec.authorization_url, &observed.authorization_url),
        token_url: differing(&spec.token_url, &observed.token_url),
        userinfo_url: differing(&spec.userinfo_url, &observed.userinfo_url),
        jwks_url: differing(&spec.jwks_url, &observed.jwks_url),
        identity_provider: differing(&identity_provider, &observed.identity_provider),
        custom_scopes: custom_scopes.map(|scopes| scopes.join(" ")),
        attribute_mapping,
    }
}

/// Whether Stytch evidently lacks the client secret: the connection is pending although every
/// other field it needs is there. The secret itself cannot be seen, but this case can, for
/// example after the connection was recreated or its secret cleared outside Kubernetes.
fn lacks_secret(observed: &OidcConnection) -> bool {
    let others = [
        &observed.issuer,
        &observed.client_id,
        &observed.authorization_url,
        &observed.token_url,
        &observed.userinfo_url,
        &observed.jwks_url,
    ];
    observed.status == "pending" && others.iter().all(|value| !value.is_empty())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::crd::IdentityProvider;

    fn observed() -> OidcConnection {
        OidcConnection {
            connection_id: "oidc-connection-test-1".into(),
            status: "active".into(),
            display_name: "Acme".into(),
            client_id: "client".into(),
            issuer: "https://idp.example/acme".into(),
            authorization_url: "https://idp.example/acme/authorize".into(),
            identity_provider: "okta".into(),
            custom_scopes: "groups offline_access".into(),
            ..Default::default()
        }
    }

    #[test]
    fn unset_fields_are_never_sent() {
        let spec = OidcConnectionSpec::default();
        assert!(changes(&spec, &observed(), None, None).is_empty());
    }

    #[test]
    fn only_differing_fields_are_sent() {
        let spec = OidcConnectionSpec {
            display_name: Some("Acme Okta".into()),
            client_id: Some("client".into()),
            issuer: Some("https://idp.example/acme".into()),
            identity_provider: Some(IdentityProvider::Okta),
            ..Default::default()
        };
        let request = changes(&spec, &observed(), None, None);
        assert_eq!(request.field_names(), ["display_name"]);
    }

    #[test]
    fn issuer_comparison_is_case_sensitive() {
        let spec = OidcConnectionSpec {
            issuer: Some("https://IDP.example/acme".into()),
            ..Default::default()
        };
        assert_eq!(
            changes(&spec, &observed(), None, None).field_names(),
            ["issuer"]
        );
    }

    #[test]
    fn scopes_are_compared_as_lists_and_sent_space_separated() {
        let same = OidcConnectionSpec {
            custom_scopes: Some(vec!["groups".into(), "offline_access".into()]),
            ..Default::default()
        };
        assert!(changes(&same, &observed(), None, None).is_empty());
        let other = OidcConnectionSpec {
            custom_scopes: Some(vec!["groups".into()]),
            ..same
        };
        assert_eq!(
            changes(&other, &observed(), None, None)
                .custom_scopes
                .as_deref(),
            Some("groups")
        );
    }

    #[test]
    fn attribute_mapping_is_compared_as_a_map() {
        let mapping = BTreeMap::from([("email".to_owned(), "mail".to_owned())]);
        let spec = OidcConnectionSpec {
            attribute_mapping: Some(mapping),
            ..Default::default()
        };
        let mut stytch = observed();
        assert_eq!(
            changes(&spec, &stytch, None, None).field_names(),
            ["attribute_mapping"]
        );
        stytch.attribute_mapping = Some(
            serde_json::json!({"email": "mail"})
                .as_object()
                .cloned()
                .unwrap(),
        );
        assert!(changes(&spec, &stytch, None, None).is_empty());
    }

    #[test]
    fn the_client_secret_is_sent_only_when_its_fingerprint_changed() {
        let spec = OidcConnectionSpec::default();
        let secret = ClientSecret::new("first-secret".into());
        let request = changes(&spec, &observed(), Some(&secret), None);
        assert_eq!(request.field_names(), ["client_secret"]);
        let request = changes(&spec, &observed(), Some(&secret), Some(&secret.fingerprint));
        assert!(request.is_empty());
        let rotated = ClientSecret::new("second-secret".into());
        let request = changes(
            &spec,
            &observed(),
            Some(&rotated),
            Some(&secret.fingerprint),
        );
        assert_eq!(request.field_names(), ["client_secret"]);
    }

    #[test]
    fn the_secret_is_sent_again_when_stytch_is_pending_for_lack_of_it() {
        let idp = "https://idp.example/acme";
        let pending_without_secret = OidcConnection {
            status: "pending".into(),
            issuer: idp.into(),
            client_id: "client".into(),
            authorization_url: format!("{idp}/authorize"),
            token_url: format!("{idp}/token"),
            userinfo_url: format!("{idp}/userinfo"),
            jwks_url: format!("{idp}/keys"),
            ..Default::default()
        };
        let secret = ClientSecret::new("first-secret".into());
        let spec = OidcConnectionSpec::default();
        let request = changes(
            &spec,
            &pending_without_secret,
            Some(&secret),
            Some(&secret.fingerprint),
        );
        assert_eq!(request.field_names(), ["client_secret"]);
        let active = OidcConnection {
            status: "active".into(),
            ..pending_without_secret
        };
        assert!(changes(&spec, &active, Some(&secret), Some(&secret.fingerprint)).is_empty());
    }

    #[test]
    fn fingerprints_are_short_stable_and_do_not_contain_the_secret() {
        let value = SecretString::from("sentinel-secret-value");
        assert_eq!(
            fingerprint(&value),
            fingerprint(&SecretString::from("sentinel-secret-value"))
        );
        assert_eq!(fingerprint(&value).len(), "sha256:".len() + 16);
        assert!(!fingerprint(&value).contains("sentinel"));
    }
}
