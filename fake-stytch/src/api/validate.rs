//! Input checks of create and update, made before anything changes: a rejected update changes
//! nothing at all.

use url::Url;

use crate::{
    api::StytchError,
    state::{ConnectionChanges, IDENTITY_PROVIDERS},
    unconfirmed,
};

/// `""` passes: it clears the field rather than naming a provider.
pub fn identity_provider(value: Option<&str>) -> Result<(), StytchError> {
    match value {
        Some(value) if !value.is_empty() && !IDENTITY_PROVIDERS.contains(&value) => {
            Err(unconfirmed::invalid_identity_provider(value))
        }
        _ => Ok(()),
    }
}

pub fn update(changes: &ConnectionChanges) -> Result<(), StytchError> {
    identity_provider(changes.identity_provider.as_deref())?;

    let urls = [
        ("issuer", &changes.issuer),
        ("authorization", &changes.authorization_url),
        ("token", &changes.token_url),
        ("userinfo", &changes.userinfo_url),
        ("jwks", &changes.jwks_url),
    ];
    for (field, value) in urls {
        if let Some(value) = value
            && !value.is_empty()
            && !is_https_url(value)
        {
            return Err(unconfirmed::invalid_url(field));
        }
    }

    let secret_length = changes.client_secret.as_ref().map_or(0, String::len);
    if secret_length > unconfirmed::CLIENT_SECRET_MAX_BYTES {
        return Err(unconfirmed::client_secret_too_long());
    }

    Ok(())
}

/// A URL with a host whose scheme is written `https://`, in lower case: issuers are compared
/// case-sensitively, so `HTTPS://` is not taken as the same thing.
fn is_https_url(value: &str) -> bool {
    value.starts_with("https://") && Url::parse(value).is_ok_and(|url| url.host().is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changes(edit: impl FnOnce(&mut ConnectionChanges)) -> ConnectionChanges {
        let mut changes = ConnectionChanges::default();
        edit(&mut changes);
        changes
    }

    fn error_type(changes: &ConnectionChanges) -> Option<String> {
        update(changes).err().map(|error| error.error_type)
    }

    #[test]
    fn the_fifteen_identity_providers_are_accepted_and_others_are_not() {
        for provider in IDENTITY_PROVIDERS {
            assert!(identity_provider(Some(provider)).is_ok(), "{provider}");
        }
        let misspelt = identity_provider(Some("microsoftentra")).unwrap_err();
        assert_eq!(misspelt.error_type, "invalid_sso_idp");
        assert!(identity_provider(Some("")).is_ok());
    }

    #[test]
    fn each_url_must_be_https_and_names_its_field_when_it_is_not() {
        type Setter = fn(&mut ConnectionChanges, String);
        let cases: [(Setter, &str); 5] = [
            (
                |c, v| c.issuer = Some(v),
                "oidc_connection_issuer_url_invalid_format",
            ),
            (
                |c, v| c.authorization_url = Some(v),
                "oidc_connection_authorization_url_invalid_format",
            ),
            (
                |c, v| c.token_url = Some(v),
                "oidc_connection_token_url_invalid_format",
            ),
            (
                |c, v| c.userinfo_url = Some(v),
                "oidc_connection_userinfo_url_invalid_format",
            ),
            (
                |c, v| c.jwks_url = Some(v),
                "oidc_connection_jwks_url_invalid_format",
            ),
        ];
        for (set, expected) in cases {
            for bad in [
                "http://idp.example",
                "idp.example",
                "HTTPS://idp.example",
                "https://",
            ] {
                let changed = changes(|c| set(c, bad.into()));
                assert_eq!(error_type(&changed).as_deref(), Some(expected), "{bad}");
            }
            assert_eq!(
                error_type(&changes(|c| set(c, "https://idp.example/t".into()))),
                None
            );
            assert_eq!(error_type(&changes(|c| set(c, String::new()))), None);
        }
    }

    #[test]
    fn a_client_secret_over_the_limit_is_refused() {
        let at_limit = "x".repeat(unconfirmed::CLIENT_SECRET_MAX_BYTES);
        let over = format!("{at_limit}x");

        assert_eq!(
            error_type(&changes(|c| c.client_secret = Some(at_limit))),
            None
        );
        assert_eq!(
            error_type(&changes(|c| c.client_secret = Some(over))).as_deref(),
            Some("client_secret_too_long")
        );
    }
}
