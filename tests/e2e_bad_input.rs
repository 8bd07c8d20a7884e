//! End-to-end: what the API server refuses at `kubectl apply` time, naming the field, and what
//! it accepts however unusual, each then reconciled by the operator against the fake Stytch.

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use stytch_sso_operator::crd::IdentityProvider;
use support::*;

const CLIENT_SECRET: &str = "SENTINEL-CLIENT-SECRET-5e0c2b9a";
const RECONCILED_WITHIN: Duration = Duration::from_secs(30);
const IDP: &str = "https://idp.example.test/acme";

/// An `OidcConnection` manifest as JSON; a `Null` spec leaves the spec out.
fn object(name: &str, spec: &Value) -> String {
    let mut object = json!({
        "apiVersion": "sso.stytch-operator.dev/v1alpha1",
        "kind": "OidcConnection",
        "metadata": {"name": name},
    });
    if !spec.is_null() {
        object["spec"] = spec.clone();
    }
    object.to_string()
}

/// The smallest valid spec.
fn valid_spec() -> Value {
    json!({
        "organizationId": ORGANIZATION_ID,
        "connectionId": "conn",
        "clientSecretRef": {"name": "acme-oidc", "key": "client_secret"},
    })
}

/// `spec` with each dotted path set to `Some` value or removed with `None`.
fn edited(mut spec: Value, changes: &[(&str, Option<Value>)]) -> Value {
    for (path, value) in changes {
        let mut keys: Vec<&str> = path.split('.').collect();
        let last = keys.pop().unwrap();
        let mut parent = &mut spec;
        for key in keys {
            parent = &mut parent[key];
        }
        match value {
            Some(value) => parent[last] = value.clone(),
            None => {
                parent.as_object_mut().unwrap().remove(last);
            }
        }
    }
    spec
}

/// The valid spec with the changes of [`edited`].
fn valid_with(changes: &[(&str, Option<Value>)]) -> Value {
    edited(valid_spec(), changes)
}

fn set(path: &str, value: Value) -> Value {
    valid_with(&[(path, Some(value))])
}

fn unset(path: &str) -> Value {
    valid_with(&[(path, None)])
}

struct Refused {
    case: &'static str,
    field: &'static str,
    spec: Value,
}

fn refused(case: &'static str, field: &'static str, spec: Value) -> Refused {
    Refused { case, field, spec }
}

/// How the API server names a field in its errors: `spec.issuer: Invalid value: ...` from
/// validation, `unknown field "spec.x"` from strict decoding.
fn names_field(stderr: &str, field: &str) -> bool {
    stderr.contains(&format!("{field}: ")) || stderr.contains(&format!("unknown field \"{field}\""))
}

/// Cases that set `path` of the valid spec to each value, each refused naming `field`.
fn setting(path: &str, field: &'static str, values: Vec<(&'static str, Value)>) -> Vec<Refused> {
    values
        .into_iter()
        .map(|(case, value)| refused(case, field, set(path, value)))
        .collect()
}

fn invalid_cases() -> Vec<Refused> {
    let scopes = |n: usize| (0..n).map(|i| format!("scope-{i}")).collect::<Vec<_>>();
    let by_session = |session: Value| {
        valid_with(&[
            ("organizationId", None),
            ("memberSessionRef", Some(session)),
        ])
    };
    let too_long_issuer = format!("{IDP}/{}", "i".repeat(2049 - IDP.len() - 1));
    let groups = [
        // Missing required fields, and neither organizationId nor memberSessionRef.
        vec![
            refused("no spec at all", "spec", Value::Null),
            refused(
                "no connectionId",
                "spec.connectionId",
                unset("connectionId"),
            ),
            refused(
                "null connectionId",
                "spec.connectionId",
                set("connectionId", Value::Null),
            ),
            refused(
                "no clientSecretRef.name",
                "spec.clientSecretRef.name",
                unset("clientSecretRef.name"),
            ),
            refused(
                "no clientSecretRef.key",
                "spec.clientSecretRef.key",
                unset("clientSecretRef.key"),
            ),
            refused(
                "no memberSessionRef.key",
                "spec.memberSessionRef.key",
                by_session(json!({"name": "s"})),
            ),
            refused(
                "no memberSessionRef.name",
                "spec.memberSessionRef.name",
                by_session(json!({"key": "k"})),
            ),
            refused(
                "no credentialsRef.name",
                "spec.credentialsRef.name",
                set("credentialsRef", json!({})),
            ),
            refused(
                "neither organizationId nor memberSessionRef",
                "spec",
                unset("organizationId"),
            ),
            refused(
                "organizationId and memberSessionRef both null",
                "spec",
                valid_with(&[
                    ("organizationId", Some(Value::Null)),
                    ("memberSessionRef", Some(Value::Null)),
                ]),
            ),
            refused(
                "memberSessionRef key with a path",
                "spec.memberSessionRef.key",
                by_session(json!({"name": "s", "key": "../token"})),
            ),
            refused(
                "empty memberSessionRef name",
                "spec.memberSessionRef.name",
                by_session(json!({"name": "", "key": "k"})),
            ),
        ],
        setting(
            "organizationId",
            "spec.organizationId",
            vec![
                ("organizationId as a number", json!(42)),
                ("empty organizationId", json!("")),
                ("organizationId of 129 characters", json!("o".repeat(129))),
            ],
        ),
        setting(
            "connectionId",
            "spec.connectionId",
            vec![
                ("connectionId as a number", json!(7)),
                ("empty connectionId", json!("")),
                ("connectionId of 129 characters", json!("c".repeat(129))),
            ],
        ),
        setting(
            "displayName",
            "spec.displayName",
            vec![
                ("displayName as a boolean", json!(true)),
                ("empty displayName", json!("")),
                ("displayName of 257 characters", json!("d".repeat(257))),
            ],
        ),
        setting(
            "clientId",
            "spec.clientId",
            vec![
                ("clientId as a number", json!(12345)),
                ("empty clientId", json!("")),
                ("clientId of 1025 characters", json!("c".repeat(1025))),
            ],
        ),
        setting(
            "issuer",
            "spec.issuer",
            vec![
                ("issuer as a list", json!([IDP])),
                ("http issuer", json!("http://acme.okta.com")),
                ("upper-case scheme issuer", json!("HTTPS://acme.okta.com")),
                ("mixed-case scheme issuer", json!("Https://acme.okta.com")),
                ("host-less issuer", json!("https://")),
                ("host-less issuer with a path", json!("https:///oauth2")),
                ("issuer without slashes", json!("https:acme.okta.com")),
                ("issuer without scheme", json!("acme.okta.com")),
                (
                    "issuer with a space in the host",
                    json!("https://acme okta.com"),
                ),
                (
                    "issuer with a trailing newline",
                    json!("https://acme.okta.com\n"),
                ),
                ("empty issuer", json!("")),
                ("issuer of 2049 characters", json!(too_long_issuer)),
            ],
        ),
        setting(
            "authorizationUrl",
            "spec.authorizationUrl",
            vec![
                (
                    "http authorizationUrl",
                    json!("http://acme.okta.com/authorize"),
                ),
                ("host-less authorizationUrl", json!("https:///authorize")),
            ],
        ),
        setting(
            "tokenUrl",
            "spec.tokenUrl",
            vec![
                ("ftp tokenUrl", json!("ftp://acme.okta.com/token")),
                (
                    "upper-case scheme tokenUrl",
                    json!("HTTPS://acme.okta.com/token"),
                ),
            ],
        ),
        setting(
            "userinfoUrl",
            "spec.userinfoUrl",
            vec![
                ("host-less userinfoUrl", json!("https://")),
                ("relative userinfoUrl", json!("/userinfo")),
            ],
        ),
        setting(
            "jwksUrl",
            "spec.jwksUrl",
            vec![
                ("malformed jwksUrl", json!("https://acme okta.com/keys")),
                ("http jwksUrl", json!("http://acme.okta.com/keys")),
            ],
        ),
        setting(
            "identityProvider",
            "spec.identityProvider",
            vec![
                ("capitalised identityProvider", json!("Okta")),
                ("misspelt identityProvider", json!("microsoftentra")),
                ("empty identityProvider", json!("")),
            ],
        ),
        setting(
            "managementPolicy",
            "spec.managementPolicy",
            vec![
                ("lower-case managementPolicy", json!("observeonly")),
                ("unknown managementPolicy", json!("Manual")),
            ],
        ),
        setting(
            "deletionPolicy",
            "spec.deletionPolicy",
            vec![("unknown deletionPolicy", json!("Retain"))],
        ),
        setting(
            "memberSessionRef",
            "spec.memberSessionRef.type",
            vec![
                (
                    "unknown memberSessionRef.type",
                    json!({"name": "s", "key": "k", "type": "bearer"}),
                ),
                (
                    "memberSessionRef.type as a boolean",
                    json!({"name": "s", "key": "k", "type": true}),
                ),
            ],
        ),
        setting(
            "customScopes",
            "spec.customScopes",
            vec![
                ("customScopes as a string", json!("openid groups")),
                ("empty scope list", json!([])),
                ("65 scopes", json!(scopes(65))),
            ],
        ),
        setting(
            "customScopes",
            "spec.customScopes[0]",
            vec![
                ("scope as a number", json!([1])),
                ("scope as null", json!([null])),
                ("scope with a space", json!(["openid groups"])),
                ("scope with a tab", json!(["openid\tgroups"])),
                ("empty scope", json!([""])),
                ("scope of 257 characters", json!(["s".repeat(257)])),
            ],
        ),
        setting(
            "attributeMapping",
            "spec.attributeMapping",
            vec![
                ("attributeMapping as a string", json!("email=mail")),
                ("attributeMapping as a list", json!(["email"])),
            ],
        ),
        setting(
            "resyncInterval",
            "spec.resyncInterval",
            vec![
                ("resyncInterval as a number", json!(600)),
                ("resyncInterval in days", json!("1d")),
                ("resyncInterval not a duration", json!("abc")),
                ("resyncInterval below 1s", json!("500ms")),
                ("resyncInterval of zero", json!("0s")),
                ("fractional resyncInterval", json!("1.5h")),
                ("resyncInterval with a space", json!("1h 30m")),
                (
                    "resyncInterval too large for a duration",
                    json!("99999999999999h"),
                ),
            ],
        ),
        setting(
            "clientSecretRef",
            "spec.clientSecretRef",
            vec![
                ("clientSecretRef as a list", json!(["acme-oidc"])),
                ("clientSecretRef as a string", json!("acme-oidc")),
            ],
        ),
        setting(
            "clientSecretRef.key",
            "spec.clientSecretRef.key",
            vec![
                ("clientSecretRef key with a slash", json!("client/secret")),
                ("clientSecretRef key with a space", json!("client secret")),
                ("empty clientSecretRef key", json!("")),
            ],
        ),
        setting(
            "clientSecretRef.name",
            "spec.clientSecretRef.name",
            vec![("empty clientSecretRef name", json!(""))],
        ),
        setting(
            "credentialsRef",
            "spec.credentialsRef.name",
            vec![("empty credentialsRef name", json!({"name": ""}))],
        ),
        setting(
            "attributeMapping",
            "spec.attributeMapping.email",
            vec![("attributeMapping value as a number", json!({"email": 1}))],
        ),
        // Unknown fields: the schema is structural and kubectl asks for strict field validation.
        vec![
            refused(
                "the client secret inline",
                "spec.clientSecret",
                set("clientSecret", json!(CLIENT_SECRET)),
            ),
            refused(
                "a misspelt field",
                "spec.issuerUrl",
                set("issuerUrl", json!(IDP)),
            ),
            refused(
                "a snake_case field",
                "spec.connection_id",
                set("connection_id", json!("conn")),
            ),
            refused(
                "a namespace in clientSecretRef",
                "spec.clientSecretRef.namespace",
                set("clientSecretRef.namespace", json!("other")),
            ),
            refused(
                "an unknown credentialsRef field",
                "spec.credentialsRef.key",
                set("credentialsRef", json!({"name": "c", "key": "k"})),
            ),
        ],
    ];
    groups.into_iter().flatten().collect()
}

#[tokio::test]
async fn at_least_forty_invalid_manifests_are_refused_naming_the_field() {
    let namespace = TestNamespace::with_client_secret("bad-input", CLIENT_SECRET).await;
    let cases = invalid_cases();
    assert!(cases.len() >= 40, "only {} cases", cases.len());

    let mut failures = Vec::new();
    for (index, case) in cases.iter().enumerate() {
        let output = namespace.apply(&object(&format!("invalid-{index}"), &case.spec));
        if output.success || !names_field(&output.stderr, case.field) {
            failures.push(format!(
                "{} (expected a refusal naming {}): success={}\nstdout: {}\nstderr: {}",
                case.case, case.field, output.success, output.stdout, output.stderr
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} invalid manifests were not refused naming the field:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );

    // Immutable fields: valid objects first, then changes to them.
    let by_organization = valid_with(&[("connectionId", Some(json!("conn-immutable")))]);
    let by_session = valid_with(&[
        ("connectionId", Some(json!("conn-session"))),
        ("organizationId", None),
        (
            "memberSessionRef",
            Some(json!({"name": "member-session", "key": "token"})),
        ),
    ]);
    for (name, spec) in [("immutable", &by_organization), ("session", &by_session)] {
        let output = namespace.apply(&object(name, spec));
        assert!(output.success, "{name}: {}", output.stderr);
    }
    let other_organization = "organization-test-00000000-0000-4000-8000-0000000000ff";
    let session = json!({"name": "member-session", "key": "token"});
    let changes = [
        (
            "a changed connectionId",
            "immutable",
            edited(
                by_organization.clone(),
                &[("connectionId", Some(json!("conn-other")))],
            ),
            "spec.connectionId",
            "connectionId is immutable",
        ),
        (
            "a changed organizationId",
            "immutable",
            edited(
                by_organization.clone(),
                &[("organizationId", Some(json!(other_organization)))],
            ),
            "spec.organizationId",
            "organizationId is immutable",
        ),
        (
            "organizationId removed",
            "immutable",
            edited(by_organization.clone(), &[("organizationId", None)]),
            "spec",
            "organizationId cannot be added or removed after creation",
        ),
        (
            "organizationId removed for a memberSessionRef",
            "immutable",
            edited(
                by_organization.clone(),
                &[
                    ("organizationId", None),
                    ("memberSessionRef", Some(session)),
                ],
            ),
            "spec",
            "organizationId cannot be added or removed after creation",
        ),
        (
            "organizationId added",
            "session",
            edited(
                by_session.clone(),
                &[("organizationId", Some(json!(ORGANIZATION_ID)))],
            ),
            "spec",
            "organizationId cannot be added or removed after creation",
        ),
    ];
    for (case, name, spec, field, message) in &changes {
        let output = namespace.apply(&object(name, spec));
        assert!(
            !output.success
                && names_field(&output.stderr, field)
                && output.stderr.contains(message),
            "{case} (expected a refusal naming {field}): success={}\nstderr: {}",
            output.success,
            output.stderr
        );
    }

    let stored: BTreeSet<String> = namespace
        .objects()
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|o| o.metadata.name.unwrap())
        .collect();
    let expected: BTreeSet<String> = ["immutable", "session"].map(String::from).into();
    assert_eq!(stored, expected, "an invalid object was stored");
    let immutable = namespace.get("immutable").await;
    assert_eq!(immutable.metadata.generation, Some(1), "the object changed");
    assert_eq!(immutable.spec.connection_id, "conn-immutable");
    assert_eq!(
        immutable.spec.organization_id.as_deref(),
        Some(ORGANIZATION_ID)
    );
    let session = namespace.get("session").await;
    assert_eq!(session.metadata.generation, Some(1), "the object changed");
    assert_eq!(session.spec.organization_id, None);
}

/// An organization id of exactly the 128 characters the schema allows.
fn longest_organization_id() -> String {
    let prefix = "organization-test-";
    format!("{prefix}{}", "9".repeat(128 - prefix.len()))
}

struct Accepted {
    name: &'static str,
    /// Spec fields set over (or, with `null`, removed from) the defaults of [`accepted_spec`].
    fields: Value,
}

fn accepted(name: &'static str, fields: Value) -> Accepted {
    Accepted { name, fields }
}

fn valid_cases() -> Vec<Accepted> {
    let scopes: Vec<String> = (0..64).map(|i| format!("scope.{i}:read")).collect();
    vec![
        accepted(
            "emoji-display-name",
            json!({"displayName": "Acme 🔐 Single Sign-On ✨🚀"}),
        ),
        accepted(
            "cjk-display-name",
            json!({"displayName": "株式会社アクメ シングルサインオン 登录"}),
        ),
        accepted(
            "display-name-of-256",
            json!({"displayName": "D".repeat(256)}),
        ),
        accepted(
            "display-name-of-256-cjk",
            json!({"displayName": "名".repeat(256)}),
        ),
        accepted(
            "organization-id-of-128",
            json!({"organizationId": longest_organization_id()}),
        ),
        accepted("organization-by-slug", json!({"organizationId": "org-0"})),
        accepted(
            "organization-by-external-id",
            json!({"organizationId": "org-ext-0"}),
        ),
        accepted(
            "issuer-with-port-path-and-slash",
            json!({"issuer": "https://idp.example.test:8443/tenants/acme/"}),
        ),
        accepted(
            "issuer-with-query",
            json!({"issuer": "https://idp.example.test/oauth2?tenant=acme&region=eu"}),
        ),
        accepted(
            "idn-issuer",
            json!({"issuer": "https://例え.テスト/テナント"}),
        ),
        accepted(
            "ipv6-issuer",
            json!({"issuer": "https://[::1]:1/realms/acme"}),
        ),
        accepted(
            "issuer-of-2048",
            json!({"issuer": format!("{IDP}/{}", "i".repeat(2048 - IDP.len() - 1))}),
        ),
        accepted("sixty-four-scopes", json!({"customScopes": scopes})),
        accepted(
            "unusual-scopes",
            json!({"customScopes": [
                "https://graph.microsoft.com/User.Read", "api://acme/.default", "read:org",
                "offline_access", "ünïcødé", "groups[*]", "a=b;c", "\"quoted\"", "🔑",
            ]}),
        ),
        accepted("empty-attribute-mapping", json!({"attributeMapping": {}})),
        accepted(
            "unicode-attribute-mapping",
            json!({"attributeMapping": {"メール": "email", "ñombre": "given_name", "🔑": "sub"}}),
        ),
        accepted("resync-1h30m", json!({"resyncInterval": "1h30m"})),
        accepted(
            "resync-of-exactly-1s-in-ms",
            json!({"resyncInterval": "1000ms"}),
        ),
        accepted("observe-only", json!({"managementPolicy": "ObserveOnly"})),
        accepted("delete-policy", json!({"deletionPolicy": "Delete"})),
        accepted(
            "explicit-defaults",
            json!({"managementPolicy": "Update", "deletionPolicy": "Orphan"}),
        ),
        accepted(
            "dotted-secret-key",
            json!({"clientSecretRef": {"name": "acme-oidc-v2", "key": "client.secret-v2_1"}}),
        ),
        accepted("client-id-of-1024", json!({"clientId": "c".repeat(1024)})),
        accepted(
            "optional-fields-null",
            json!({
                "displayName": null, "customScopes": null, "attributeMapping": null,
                "resyncInterval": null, "managementPolicy": null, "deletionPolicy": null,
                "credentialsRef": null, "memberSessionRef": null,
            }),
        ),
    ]
}

/// A spec that becomes active without discovery (every URL explicit), with its own connection
/// and the `index`-th identity provider, under the case's fields.
fn accepted_spec(index: usize, case: &Accepted) -> Value {
    let mut spec = valid_with(&[
        ("connectionId", Some(json!(format!("conn-{}", case.name)))),
        ("clientId", Some(json!("client-1"))),
        (
            "identityProvider",
            Some(json!(IdentityProvider::ALL[index % 15].as_str())),
        ),
        ("issuer", Some(json!(IDP))),
        ("authorizationUrl", Some(json!(format!("{IDP}/authorize")))),
        ("tokenUrl", Some(json!(format!("{IDP}/token")))),
        ("userinfoUrl", Some(json!(format!("{IDP}/userinfo")))),
        ("jwksUrl", Some(json!(format!("{IDP}/keys")))),
    ]);
    for (key, value) in case.fields.as_object().unwrap() {
        spec[key] = value.clone();
    }
    spec
}

fn condition(
    object: &stytch_sso_operator::crd::OidcConnection,
    type_: &str,
) -> Option<(String, String)> {
    let status = object.status.as_ref()?;
    let condition = status.conditions.iter().find(|c| c.type_ == type_)?;
    Some((condition.status.clone(), condition.reason.clone()))
}

#[tokio::test]
async fn at_least_fifteen_unusual_but_valid_manifests_are_accepted_and_reconciled() {
    let namespace = TestNamespace::with_client_secret("odd-input", CLIENT_SECRET).await;
    namespace
        .put_secret("acme-oidc-v2", &[("client.secret-v2_1", CLIENT_SECRET)])
        .await;
    let cases = valid_cases();
    assert!(cases.len() >= 15, "only {} cases", cases.len());
    let longest = longest_organization_id();
    let connection_ids: Vec<String> = cases.iter().map(|c| format!("conn-{}", c.name)).collect();
    let (in_longest, in_seeded): (Vec<&str>, Vec<&str>) = connection_ids
        .iter()
        .map(String::as_str)
        .partition(|id| *id == "conn-organization-id-of-128");
    let fake = FakeStytch::start_with_organizations(
        &namespace.name,
        &[
            (ORGANIZATION_ID, in_seeded.as_slice()),
            (longest.as_str(), in_longest.as_slice()),
        ],
    )
    .await;
    let _operator = namespace.start_operator(&fake, "10m");

    let specs: Vec<Value> = cases
        .iter()
        .enumerate()
        .map(|(index, case)| accepted_spec(index, case))
        .collect();
    let providers: BTreeSet<&str> = specs
        .iter()
        .map(|s| s["identityProvider"].as_str().unwrap())
        .collect();
    assert_eq!(
        providers.len(),
        IdentityProvider::ALL.len(),
        "every identity provider is used"
    );
    let refused: Vec<String> = cases
        .iter()
        .zip(&specs)
        .filter_map(|(case, spec)| {
            let output = namespace.apply(&object(case.name, spec));
            (!output.success).then(|| format!("{}: {}", case.name, output.stderr))
        })
        .collect();
    assert!(
        refused.is_empty(),
        "{} of {} valid manifests were refused:\n{}",
        refused.len(),
        cases.len(),
        refused.join("\n")
    );

    let deadline = Instant::now() + RECONCILED_WITHIN;
    for (case, spec) in cases.iter().zip(&specs) {
        let within = deadline.saturating_duration_since(Instant::now());
        if spec["managementPolicy"] == "ObserveOnly" {
            // The seeded connection differs and is never written: Synced says so.
            let object = namespace
                .wait_for_condition(case.name, "Synced", "False", within)
                .await;
            let synced = condition(&object, "Synced").unwrap();
            assert_eq!(synced.1, "PendingChanges", "{}", case.name);
            let ready = condition(&object, "Ready").map(|c| c.0);
            assert_ne!(ready.as_deref(), Some("True"), "{}", case.name);
            let pending = object.status.unwrap().pending_changes;
            assert!(!pending.is_empty(), "{}: no pending changes", case.name);
            continue;
        }
        let object = namespace
            .wait_for_condition(case.name, "Ready", "True", within)
            .await;
        assert_eq!(
            condition(&object, "Synced").unwrap().0,
            "True",
            "{}",
            case.name
        );
        let connection = fake.connection(&format!("conn-{}", case.name)).await;
        assert_eq!(connection["issuer"], spec["issuer"], "{}", case.name);
        assert_eq!(
            connection["identity_provider"], spec["identityProvider"],
            "{}",
            case.name
        );
        if let Some(display_name) = spec["displayName"].as_str() {
            assert_eq!(connection["display_name"], display_name, "{}", case.name);
        }
        if let Some(scopes) = spec["customScopes"].as_array() {
            let joined: Vec<&str> = scopes.iter().map(|s| s.as_str().unwrap()).collect();
            assert_eq!(
                connection["custom_scopes"],
                joined.join(" "),
                "{}",
                case.name
            );
        }
        if let Some(mapping) = spec["attributeMapping"]
            .as_object()
            .filter(|m| !m.is_empty())
        {
            assert_eq!(
                connection["attribute_mapping"],
                json!(mapping),
                "{}",
                case.name
            );
        }
    }

    // The object with deletionPolicy Delete deletes its connection, while the operator runs.
    let output = kubectl(
        &[
            "delete",
            "-n",
            &namespace.name,
            "oidcconnection",
            "delete-policy",
            "--timeout=20s",
        ],
        None,
    );
    assert!(output.success, "{}", output.stderr);
    assert!(fake.find_connection("conn-delete-policy").await.is_none());
}
