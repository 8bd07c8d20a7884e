//! Reliability under bad Secrets: a client secret whose Secret is missing, lacks the key, holds
//! an empty value, bytes that are not UTF-8, or a value far larger than Stytch accepts. Each
//! must give a condition that says what to fix, make no call to Stytch for that object, and
//! recover once the Secret is fixed. Every object has an organization of its own in the fake,
//! so the calls made for it, lists included, are told apart in the call log.
//!
//! A value above Stytch's limit (4096 bytes in the fake; Stytch does not publish one) but
//! within the operator's own (16 KiB) is sent: Stytch refuses it, and the object must then
//! fail once, without retrying, and recover the same way.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;
use support::reliability::{
    self, Call, Fragment, Profile, StytchCalls, lost_update, max_calls_per_connection_per_minute,
    seconds,
};
use support::*;

const SCENARIO: &str = "bad_secrets";
const KEY: &str = "client_secret";
const FIXED_VALUE: &str = "SENTINEL-FIXED-CLIENT-SECRET-7d3e";
const WAIT: Duration = Duration::from_secs(30);

/// One bad Secret: what it holds, and what the operator must say about it.
struct Case {
    name: &'static str,
    /// The Secret's data; `None`: the Secret does not exist.
    data: Option<BTreeMap<String, ByteString>>,
    reason: &'static str,
    /// The reason of its Warning Event.
    event_reason: &'static str,
    /// Words the condition's message must contain besides the Secret's name.
    says: Vec<String>,
    /// Calls to Stytch the object may make before the fix: 0, except when Stytch itself must
    /// be the one to refuse (one list, one update).
    calls_before_fix: usize,
}

fn bytes(value: &[u8]) -> Option<BTreeMap<String, ByteString>> {
    Some(BTreeMap::from([(
        KEY.to_owned(),
        ByteString(value.to_vec()),
    )]))
}

fn cases() -> Vec<Case> {
    let limit = stytch_sso_operator::secrets::MAX_VALUE_BYTES;
    let oversized = "SENTINEL-OVERSIZED-".repeat(512 * 1024 / 19);
    let over_stytch = "SENTINEL-OVER-STYTCH-".repeat(6 * 1024 / 21);
    vec![
        Case {
            name: "missing-secret",
            data: None,
            reason: "SecretNotFound",
            event_reason: "SecretNotFound",
            says: vec!["does not exist".into(), format!("\"{KEY}\"")],
            calls_before_fix: 0,
        },
        Case {
            name: "missing-key",
            data: Some(BTreeMap::from([(
                "clientSecret".to_owned(),
                ByteString(b"SENTINEL-WRONG-KEY".to_vec()),
            )])),
            reason: "SecretKeyNotFound",
            event_reason: "SecretKeyNotFound",
            says: vec![format!("no key \"{KEY}\""), "[clientSecret]".into()],
            calls_before_fix: 0,
        },
        Case {
            name: "empty-value",
            data: bytes(b""),
            reason: "SecretInvalid",
            event_reason: "SecretInvalid",
            says: vec![format!("key \"{KEY}\" is empty. Put the value")],
            calls_before_fix: 0,
        },
        Case {
            name: "not-utf8",
            data: bytes(&[0xff, 0xfe, 0x00, 0xc3, 0x28]),
            reason: "SecretInvalid",
            event_reason: "SecretInvalid",
            says: vec![format!(
                "key \"{KEY}\" is not UTF-8 text. Store the value as text"
            )],
            calls_before_fix: 0,
        },
        Case {
            name: "far-too-large",
            data: bytes(oversized.as_bytes()),
            reason: "SecretInvalid",
            event_reason: "SecretInvalid",
            says: vec![
                format!("key \"{KEY}\" is {} bytes", oversized.len()),
                format!("more than the {limit} bytes the operator accepts"),
            ],
            calls_before_fix: 0,
        },
        Case {
            name: "over-stytch-limit",
            data: bytes(over_stytch.as_bytes()),
            reason: "ClientSecretTooLong",
            event_reason: "UpdateFailed",
            says: vec!["client_secret_too_long".into()],
            calls_before_fix: 2,
        },
    ]
}

fn organization_of(case: &Case) -> String {
    format!("organization-test-bad-secret-{}", case.name)
}

fn connection_of(case: &Case) -> String {
    format!("oidc-connection-test-bad-secret-{}", case.name)
}

fn secret_of(case: &Case) -> String {
    format!("oidc-{}", case.name)
}

/// An object for the case's organization and connection, reading key [`KEY`] of its Secret.
fn object_manifest(case: &Case) -> String {
    let idp = "https://idp.example.test/bad-secrets";
    format!(
        "apiVersion: sso.stytch-operator.dev/v1alpha1\nkind: OidcConnection\n\
         metadata:\n  name: {name}\nspec:\n  organizationId: {organization}\n  \
         connectionId: {connection}\n  clientSecretRef: {{name: {secret}, key: {KEY}}}\n  \
         displayName: Bad secret {name}\n  clientId: client-{name}\n  identityProvider: okta\n  \
         issuer: {idp}\n  authorizationUrl: {idp}/authorize\n  tokenUrl: {idp}/token\n  \
         userinfoUrl: {idp}/userinfo\n  jwksUrl: {idp}/keys\n",
        name = case.name,
        organization = organization_of(case),
        connection = connection_of(case),
        secret = secret_of(case),
    )
}

/// Calls the fake received for the case's organization.
fn calls_for(calls: &[Call], case: &Case) -> usize {
    let organization = organization_of(case);
    calls
        .iter()
        .filter(|call| call.organization_id() == Some(organization.as_str()))
        .count()
}

#[tokio::test]
async fn each_bad_secret_gives_a_clear_condition_no_stytch_call_and_recovers_once_fixed() {
    let profile = Profile::from_env();
    let cases = cases();
    install_crd();
    let namespace = TestNamespace::create("rel-bad-secrets").await;
    let connections: Vec<(String, String)> = cases
        .iter()
        .map(|case| (organization_of(case), connection_of(case)))
        .collect();
    let organizations: Vec<(&str, Vec<&str>)> = connections
        .iter()
        .map(|(organization, connection)| (organization.as_str(), vec![connection.as_str()]))
        .collect();
    let organizations: Vec<(&str, &[&str])> = organizations
        .iter()
        .map(|(organization, connections)| (*organization, connections.as_slice()))
        .collect();
    let fake = FakeStytch::start_with_organizations(&namespace.name, &organizations).await;
    let operator = namespace.start_operator(&fake, "10m");
    let secrets = secrets(&namespace);

    // Bad Secrets first, then the objects that read them.
    for case in &cases {
        if let Some(data) = &case.data {
            let secret = Secret {
                metadata: kube::api::ObjectMeta {
                    name: Some(secret_of(case)),
                    ..Default::default()
                },
                data: Some(data.clone()),
                ..Default::default()
            };
            secrets
                .create(&PostParams::default(), &secret)
                .await
                .unwrap();
        }
        let output = namespace.apply(&object_manifest(case));
        assert!(output.success, "kubectl apply failed: {}", output.stderr);
    }

    let mut problems = Vec::new();
    for case in &cases {
        let object = namespace
            .wait_for_condition(case.name, "Ready", "False", WAIT)
            .await;
        let ready = object.status.as_ref().unwrap().conditions.iter();
        let ready = ready.clone().find(|c| c.type_ == "Ready").unwrap();
        let secret_name = format!("{}/{}", namespace.name, secret_of(case));
        eprintln!(
            "{}: Ready=False {}: {}",
            case.name, ready.reason, ready.message
        );
        if ready.reason != case.reason {
            problems.push(format!(
                "{}: reason {}, not {}",
                case.name, ready.reason, case.reason
            ));
        }
        let must_say = std::iter::once(&secret_name).chain(case.says.iter());
        for words in must_say.filter(|w| case.calls_before_fix == 0 || !w.contains('/')) {
            if !ready.message.contains(words.as_str()) {
                problems.push(format!(
                    "{}: message {:?} lacks {words:?}",
                    case.name, ready.message
                ));
            }
        }
        if ready.message.contains("SENTINEL") {
            problems.push(format!("{}: the message shows the value", case.name));
        }
    }
    // Time for any call a bad Secret might wrongly cause to show in the call log.
    fake.settle().await;
    let before_fix = reliability::calls(&fake).await;
    for case in &cases {
        let made = calls_for(&before_fix, case);
        if made != case.calls_before_fix {
            problems.push(format!(
                "{}: {made} Stytch calls before the fix, expected {}",
                case.name, case.calls_before_fix
            ));
        }
    }
    let events = namespace.events().await;
    for case in &cases {
        let about = if case.calls_before_fix == 0 {
            secret_of(case)
        } else {
            case.says[0].clone()
        };
        let warned = events.iter().any(|(type_, reason, note)| {
            type_ == "Warning" && reason == case.event_reason && note.contains(&about)
        });
        if !warned {
            problems.push(format!(
                "{}: no Warning Event {}",
                case.name, case.event_reason
            ));
        }
    }

    // Fix every Secret at once; each object must become Ready with the fixed value.
    let fixed_at = Instant::now();
    for case in &cases {
        let data = json!({"data": {KEY: base64_of(FIXED_VALUE)}});
        match case.data {
            Some(_) => {
                let patch = Patch::Merge(&data);
                secrets
                    .patch(&secret_of(case), &PatchParams::default(), &patch)
                    .await
                    .unwrap();
            }
            None => {
                namespace
                    .put_secret(&secret_of(case), &[(KEY, FIXED_VALUE)])
                    .await
            }
        }
    }
    let mut recovery = Duration::ZERO;
    for case in &cases {
        namespace
            .wait_for_condition(case.name, "Ready", "True", WAIT)
            .await;
        recovery = recovery.max(fixed_at.elapsed());
    }
    fake.settle().await;

    let calls = reliability::calls(&fake).await;
    let mut updates_lost = 0;
    for case in &cases {
        let object = namespace.get(case.name).await;
        let connection = fake.find_connection(&connection_of(case)).await;
        if let Some(why) = lost_update(&object, connection.as_ref(), FIXED_VALUE) {
            updates_lost += 1;
            problems.push(why);
        }
        let after_fix = calls_for(&calls, case) - calls_for(&before_fix, case);
        // One list and one update, nothing more.
        if after_fix != 2 {
            problems.push(format!(
                "{}: {after_fix} Stytch calls after the fix, not 2",
                case.name
            ));
        }
    }
    let secret_leaked = operator.log().contains("SENTINEL")
        || format!("{events:?}").contains("SENTINEL")
        || serde_json::to_string(&fake.calls().await)
            .unwrap()
            .contains("SENTINEL");
    if secret_leaked {
        problems.push("a Secret value appears in the log, Events or the call log".into());
    }

    let fragment = Fragment {
        scenario: SCENARIO.into(),
        profile,
        faults_injected: cases
            .iter()
            .map(|case| format!("secret:{}", case.name))
            .collect(),
        objects: cases.len(),
        updates_lost,
        max_calls_per_object_per_minute: Some(max_calls_per_connection_per_minute(&calls)),
        bound: "no Stytch call for an object whose Secret the operator refuses; a value within \
                the operator's 16 KiB but over Stytch's limit costs one list and one refused \
                update, not retried; after the fix, one list and one update per object"
            .into(),
        recovery_seconds: Some(seconds(recovery)),
        stytch_calls: StytchCalls::of(&calls),
        passed: problems.is_empty(),
        notes: format!(
            "Secrets fixed all at once; recovery is from the fix to the last object Ready. \
             The same sizes in both profiles. {}",
            problems.join("; ")
        ),
    };
    fragment.write();
    assert!(problems.is_empty(), "{problems:#?}");
}

fn base64_of(value: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(value)
}
