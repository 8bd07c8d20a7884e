//! Reading secret values from Kubernetes Secrets.
//!
//! Values are read with a direct GET on each reconcile instead of from a cache: the operator
//! never holds the cluster's Secrets in memory (it watches only their metadata, to know when
//! to re-read). A problem with a Secret becomes a [`Failure`] that names the Secret and the
//! key to fix, never the value.

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use secrecy::SecretString;

use crate::Error;
use crate::reconcile::status::Failure;

/// Largest value the operator accepts from a Secret key; far above any real client secret.
/// Stytch publishes no limit of its own: a value under this one that Stytch refuses costs
/// one refused update, which is not retried until the Secret changes.
pub const MAX_VALUE_BYTES: usize = 16 * 1024;

/// A Secret key that could not be read: either a problem the user must fix in the Secret,
/// or an API error to retry.
#[derive(Debug)]
pub enum ReadError {
    Invalid(Failure),
    Api(Error),
}

/// Reads one key of one Secret as text.
///
/// `role` says what the value is for ("client secret", "project credentials"), so the
/// message tells the user which reference to check; `reason_prefix` picks the condition
/// reason family (`Secret...` or `Credentials...`).
pub async fn read_key(
    api: &Api<Secret>,
    namespace: &str,
    name: &str,
    key: &str,
    role: &str,
    reason_prefix: &str,
) -> Result<SecretString, ReadError> {
    let mut values = read_keys(api, namespace, name, &[key], role, reason_prefix).await?;
    Ok(values.remove(0))
}

/// Reads several keys of one Secret with one GET, in the order of `keys`.
pub async fn read_keys(
    api: &Api<Secret>,
    namespace: &str,
    name: &str,
    keys: &[&str],
    role: &str,
    reason_prefix: &str,
) -> Result<Vec<SecretString>, ReadError> {
    let secret = match api.get_opt(name).await {
        Ok(Some(secret)) => secret,
        Ok(None) => {
            let noun = if keys.len() > 1 { "keys" } else { "key" };
            let quoted: Vec<String> = keys.iter().map(|key| format!("\"{key}\"")).collect();
            let keys = quoted.join(" and ");
            return Err(ReadError::Invalid(Failure::new(
                format!("{reason_prefix}NotFound"),
                format!(
                    "Secret {namespace}/{name}, which holds the {role}, does not exist. \
                     Create it with the {noun} {keys}."
                ),
            )));
        }
        Err(error) => return Err(ReadError::Api(Error::Kube(error))),
    };
    keys.iter()
        .map(|key| value_of(&secret, namespace, name, key, role, reason_prefix))
        .collect::<Result<_, _>>()
        .map_err(ReadError::Invalid)
}

/// Extracts and checks one value; pure, for tests.
fn value_of(
    secret: &Secret,
    namespace: &str,
    name: &str,
    key: &str,
    role: &str,
    reason_prefix: &str,
) -> Result<SecretString, Failure> {
    let invalid = |what: String| {
        Failure::new(
            format!("{reason_prefix}Invalid"),
            format!("Secret {namespace}/{name}: {what}"),
        )
    };
    let Some(bytes) = secret.data.as_ref().and_then(|data| data.get(key)) else {
        let keys: Vec<&str> = secret
            .data
            .iter()
            .flat_map(|data| data.keys())
            .map(String::as_str)
            .collect();
        return Err(Failure::new(
            format!("{reason_prefix}KeyNotFound"),
            format!(
                "Secret {namespace}/{name} has no key \"{key}\" for the {role}; \
                 its keys are [{}].",
                keys.join(", ")
            ),
        ));
    };
    if bytes.0.len() > MAX_VALUE_BYTES {
        return Err(invalid(format!(
            "the {role} in key \"{key}\" is {} bytes, more than the {MAX_VALUE_BYTES} bytes \
             the operator accepts. Put only the value itself in the key, not a file or bundle.",
            bytes.0.len()
        )));
    }
    let Ok(text) = std::str::from_utf8(&bytes.0) else {
        return Err(invalid(format!(
            "the {role} in key \"{key}\" is not UTF-8 text. Store the value as text, e.g. \
             with stringData or kubectl create secret --from-literal."
        )));
    };
    let text = text.trim();
    if text.is_empty() {
        return Err(invalid(format!(
            "the {role} in key \"{key}\" is empty. Put the value in that key."
        )));
    }
    Ok(SecretString::from(text))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::ByteString;
    use secrecy::ExposeSecret;

    use super::*;

    fn secret(key: &str, value: &[u8]) -> Secret {
        Secret {
            data: Some(BTreeMap::from([(
                key.to_owned(),
                ByteString(value.to_vec()),
            )])),
            ..Default::default()
        }
    }

    fn read(secret: &Secret, key: &str) -> Result<SecretString, Failure> {
        value_of(secret, "ns", "oidc", key, "client secret", "Secret")
    }

    #[test]
    fn a_present_key_is_read_without_surrounding_whitespace() {
        let value = read(&secret("client_secret", b"  value\n"), "client_secret").unwrap();
        assert_eq!(value.expose_secret(), "value");
    }

    #[test]
    fn a_missing_key_names_the_keys_that_exist_but_no_value() {
        let failure = read(&secret("other", b"sentinel-value"), "client_secret").unwrap_err();
        assert_eq!(failure.reason, "SecretKeyNotFound");
        assert!(failure.message.contains("[other]"), "{}", failure.message);
        assert!(!failure.message.contains("sentinel-value"));
    }

    #[test]
    fn empty_oversized_and_binary_values_are_refused_without_echoing_them() {
        for value in [
            &b" "[..],
            &[0xff, 0xfe, 0x00][..],
            &vec![b'a'; MAX_VALUE_BYTES + 1][..],
        ] {
            let failure = read(&secret("k", value), "k").unwrap_err();
            assert_eq!(failure.reason, "SecretInvalid", "{}", failure.message);
            assert!(
                failure.message.starts_with("Secret ns/oidc: "),
                "{}",
                failure.message
            );
            assert!(failure.message.contains("key \"k\""), "{}", failure.message);
        }
    }
}
