//! How secrets are shown where they must not appear: as a short SHA-256 fingerprint.
//!
//! A fingerprint lets a test check which secret was sent (by computing the fingerprint of the
//! value it expects) without the secret ever being printed or stored by the fake's log.

use serde_json::Value;
use sha2::{Digest, Sha256};

const PREFIX: &str = "redacted:sha256:";

/// `redacted:sha256:` followed by the first 16 hex characters of the SHA-256 of `secret`.
pub fn fingerprint(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    let hex: String = digest
        .iter()
        .take(8)
        .map(|byte| format!("{byte:02x}"))
        .collect();
    format!("{PREFIX}{hex}")
}

/// The fingerprint of a secret, except that an empty secret stays `""`: an unset secret reveals
/// nothing, and showing it plainly keeps "the secret was cleared" readable.
pub fn conceal(secret: &str) -> String {
    if secret.is_empty() {
        String::new()
    } else {
        fingerprint(secret)
    }
}

/// The fields of a request body that hold secrets: a connection's client secret and a member
/// session's token and JWT.
pub const SECRET_FIELDS: [&str; 3] = ["client_secret", "session_token", "session_jwt"];

/// Replaces every value of a [`SECRET_FIELDS`] field, at any depth, with its fingerprint. A value
/// that is not a string is fingerprinted by its JSON text; `null` stays `null`.
pub fn redact_secrets(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, field) in map.iter_mut() {
                if SECRET_FIELDS.contains(&key.as_str()) {
                    conceal_value(field);
                } else {
                    redact_secrets(field);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_secrets),
        _ => {}
    }
}

fn conceal_value(field: &mut Value) {
    let concealed = match &*field {
        Value::Null => return,
        Value::String(secret) => conceal(secret),
        other => fingerprint(&other.to_string()),
    };
    *field = Value::String(concealed);
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_fingerprint_is_the_first_16_hex_characters_of_the_sha256() {
        // SHA-256("abc") = ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad
        assert_eq!(fingerprint("abc"), "redacted:sha256:ba7816bf8f01cfea");
    }

    #[test]
    fn client_secrets_are_redacted_at_any_depth() {
        let mut body = json!({
            "client_secret": "top",
            "nested": {"client_secret": "deep", "client_id": "kept"},
            "list": [{"client_secret": "in-array"}],
            "odd": {"client_secret": 42},
        });

        redact_secrets(&mut body);

        assert_eq!(body["client_secret"], fingerprint("top"));
        assert_eq!(body["nested"]["client_secret"], fingerprint("deep"));
        assert_eq!(body["nested"]["client_id"], "kept");
        assert_eq!(body["list"][0]["client_secret"], fingerprint("in-array"));
        assert_eq!(body["odd"]["client_secret"], fingerprint("42"));
        for secret in ["\"top\"", "\"deep\"", "in-array"] {
            assert!(
                !body.to_string().contains(secret),
                "{secret} leaked: {body}"
            );
        }
    }

    #[test]
    fn session_tokens_and_jwts_are_redacted_like_client_secrets() {
        let mut body = json!({"session_token": "tok", "nested": [{"session_jwt": "a.b.c"}]});

        redact_secrets(&mut body);

        assert_eq!(body["session_token"], fingerprint("tok"));
        assert_eq!(body["nested"][0]["session_jwt"], fingerprint("a.b.c"));
    }

    #[test]
    fn empty_and_null_client_secrets_stay_as_they_are() {
        let mut body = json!({"client_secret": "", "nested": {"client_secret": null}});
        redact_secrets(&mut body);
        assert_eq!(
            body,
            json!({"client_secret": "", "nested": {"client_secret": null}})
        );
    }
}
