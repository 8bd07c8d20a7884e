//! The decisions of a reconcile, free of I/O: what to send to Stytch ([`diff`]), what status
//! to write ([`status`]), and how Stytch's errors read as conditions (here).

pub mod diff;
pub mod status;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::Rng;
use sha2::{Digest, Sha256};

use crate::crd::OidcConnection;
use crate::stytch::StytchError;
use status::Failure;

/// Annotation that stops all Stytch calls for one object while it is `"true"`.
pub const PAUSED_ANNOTATION: &str = "sso.stytch-operator.dev/paused";
/// Annotation whose every new value forces a reconcile; the value is echoed to
/// `status.lastHandledReconcileAt`.
pub const RECONCILE_REQUESTED_AT_ANNOTATION: &str =
    "sso.stytch-operator.dev/reconcile-requested-at";

pub fn reconcile_requested_at(object: &OidcConnection) -> Option<&str> {
    let annotations = object.metadata.annotations.as_ref()?;
    annotations
        .get(RECONCILE_REQUESTED_AT_ANNOTATION)
        .map(String::as_str)
}

/// The object that owns the Stytch connection `object` also targets, if it is not `object`.
///
/// Two objects writing one connection would overwrite each other forever, so exactly one may:
/// the oldest (by creation time, then namespace and name, so the answer never flaps).
/// Objects being deleted give up their claim.
pub fn conflicting_owner<'a>(
    object: &OidcConnection,
    others: impl IntoIterator<Item = &'a OidcConnection>,
) -> Option<&'a OidcConnection> {
    let seniority = |o: &OidcConnection| {
        let created = o.metadata.creation_timestamp.as_ref().map(|t| t.0);
        (
            created,
            o.metadata.namespace.clone(),
            o.metadata.name.clone(),
        )
    };
    others
        .into_iter()
        .filter(|other| other.target() == object.target())
        .filter(|other| other.metadata.deletion_timestamp.is_none())
        .filter(|other| seniority(other) != seniority(object))
        .filter(|other| seniority(other) < seniority(object))
        .min_by_key(|other| seniority(other))
}

/// The spec's name of a field of Stytch's update body (`display_name` -> `displayName`).
pub fn spec_field_name(stytch_field: &str) -> String {
    let mut name = String::with_capacity(stytch_field.len());
    let mut upper = false;
    for c in stytch_field.chars() {
        match c {
            '_' => upper = true,
            c if upper => {
                name.push(c.to_ascii_uppercase());
                upper = false;
            }
            c => name.push(c),
        }
    }
    name
}

pub fn is_paused(object: &OidcConnection) -> bool {
    object
        .metadata
        .annotations
        .as_ref()
        .and_then(|annotations| annotations.get(PAUSED_ANNOTATION))
        .is_some_and(|value| value == "true")
}

/// The object's resync interval, or `default` when unset or unreadable (the schema only
/// admits values humantime can read, so the fallback is for objects stored before it).
pub fn resync_interval(object: &OidcConnection, default: Duration) -> Duration {
    object
        .spec
        .resync_interval
        .as_deref()
        .and_then(|text| humantime::parse_duration(text).ok())
        .unwrap_or(default)
}

/// `interval` shortened by up to 10 %, so objects created together drift apart instead of
/// polling Stytch in lock-step.
pub fn jittered(interval: Duration) -> Duration {
    interval.mul_f64(1.0 - rand::rng().random_range(0.0..0.1))
}

/// Where in its organization's tick an object starts: a stable offset from its name, within
/// [`TICK_SPREAD`] (or a hundredth of the interval, if shorter). The first objects list the
/// organization and the later ones find the list fresh, instead of all of them waiting for the
/// same list at once and holding every reconcile slot while they wait, which held up any edit
/// made at that moment.
pub fn offset_in_tick(object_key: &str, interval: Duration) -> Duration {
    let spread = TICK_SPREAD.min(interval / 100).as_millis().max(1);
    let digest = Sha256::digest(object_key.as_bytes());
    let hash = u128::from(u64::from_be_bytes(digest[..8].try_into().unwrap()));
    Duration::from_millis(u64::try_from(hash % spread).unwrap_or(0))
}

/// The most an object's resync follows its organization's tick, see [`offset_in_tick`].
pub const TICK_SPREAD: Duration = Duration::from_secs(1);

/// How long until the next resync tick of `group` (an organization), at least half an
/// interval from `now`.
///
/// Ticks fall at `phase + k * interval` of wall-clock time, with a phase drawn from a stable
/// hash of the group. All objects of one organization therefore resync together, and one list
/// of the organization serves them all (see `controller::lists`); different organizations
/// spread evenly over the interval, so the operator's calls do not come in bursts. Wall-clock
/// ticks also survive a restart of the operator.
pub fn until_next_tick(group: &str, interval: Duration, now: SystemTime) -> Duration {
    let period = interval.as_millis().max(1);
    let digest = Sha256::digest(group.as_bytes());
    let hash = u128::from(u64::from_be_bytes(digest[..8].try_into().unwrap()));
    let phase = hash % period;
    let now = now
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    let since_tick = (now + period - phase) % period;
    let mut until = period - since_tick;
    if until < period / 2 {
        until += period;
    }
    Duration::from_millis(u64::try_from(until).unwrap_or(u64::MAX))
}

/// Condition reason for a Stytch error: its `error_type` in CamelCase
/// (`oidc_connection_not_found` -> `OidcConnectionNotFound`).
pub fn reason_for(error: &StytchError) -> String {
    match error.error_type() {
        "too_many_requests" => return "RateLimited".to_owned(),
        "timeout" => return "StytchTimeout".to_owned(),
        "unreachable" => return "StytchUnreachable".to_owned(),
        _ => {}
    }
    let reason: String = error
        .error_type()
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(|word| {
            let mut chars = word.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase())
                .into_iter()
                .chain(chars)
                .collect::<String>()
        })
        .collect();
    if reason.starts_with(|c: char| c.is_ascii_alphabetic()) {
        reason
    } else {
        "StytchError".to_owned()
    }
}

/// The Stytch calls a reconcile makes, for messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    List,
    Update,
    Delete,
    AuthenticateSession,
}

impl Call {
    fn describe(self) -> &'static str {
        match self {
            Self::List => "list the organization's SSO connections",
            Self::Update => "update the connection in Stytch",
            Self::Delete => "delete the connection in Stytch",
            Self::AuthenticateSession => "authenticate the member session",
        }
    }

    /// The action Stytch's RBAC checks on the `stytch.sso` resource for this call.
    fn rbac_action(self) -> &'static str {
        match self {
            Self::List | Self::AuthenticateSession => "get",
            Self::Update => "update",
            Self::Delete => "delete",
        }
    }
}

/// The condition for a failed Stytch call, saying what to do and whether the operator will
/// retry by itself. A member session that Stytch does not accept is `SessionInvalid`; one
/// whose member may not do the call is `Forbidden`, naming the refused action and resource.
pub fn failure_for(call: Call, error: &StytchError) -> Failure {
    let (reason, message) = match error {
        StytchError::Api {
            status,
            error_type,
            message,
            ..
        } if status.as_u16() == 403 => (
            "Forbidden".to_owned(),
            format!(
                "Stytch refused to {} on stytch.sso ({error_type}: {message}). With \
                 spec.memberSessionRef, give the member a role that allows it or reference \
                 another session; without it, check what the project credentials may do. The \
                 operator tries again when the spec or a Secret changes.",
                call.rbac_action()
            ),
        ),
        StytchError::Api {
            error_type,
            message,
            ..
        } if is_session_error(error_type) => (
            "SessionInvalid".to_owned(),
            format!(
                "Stytch does not accept the member session ({error_type}: {message}): it is \
                 unknown, revoked or expired. Put a fresh session in the Secret named by \
                 spec.memberSessionRef; the operator picks it up without a restart."
            ),
        ),
        _ => {
            let next_step = if error.is_transient() {
                "The operator retries with backoff."
            } else {
                "Fix the spec, the referenced Secrets or the connection in Stytch; the operator \
                 tries again when one of them changes."
            };
            // Stytch's messages end with a period of their own.
            let text = error.to_string();
            let text = text.trim_end_matches('.');
            (
                reason_for(error),
                format!("Could not {}: {text}. {next_step}", call.describe()),
            )
        }
    };
    Failure {
        request_id: error.request_id().map(str::to_owned),
        from_stytch: true,
        ..Failure::new(reason, message)
    }
}

/// Stytch's error types for a session it cannot find or that has ended.
fn is_session_error(error_type: &str) -> bool {
    matches!(
        error_type,
        "session_not_found" | "session_expired" | "invalid_session"
    ) || error_type.starts_with("session_") && !error_type.starts_with("session_authorization")
}

#[cfg(test)]
mod tests {
    use reqwest::StatusCode;

    use super::*;

    fn api_error(status: StatusCode, error_type: &str) -> StytchError {
        StytchError::Api {
            status,
            error_type: error_type.into(),
            message: "message".into(),
            request_id: "request-id-test-1".into(),
            retry_after: None,
        }
    }

    #[test]
    fn reasons_are_stytch_error_types_in_camel_case() {
        let error = api_error(StatusCode::NOT_FOUND, "oidc_connection_not_found");
        assert_eq!(reason_for(&error), "OidcConnectionNotFound");
        let error = api_error(StatusCode::TOO_MANY_REQUESTS, "too_many_requests");
        assert_eq!(reason_for(&error), "RateLimited");
    }

    #[test]
    fn stable_failures_say_what_to_fix_and_transient_ones_that_they_are_retried() {
        let stable = failure_for(
            Call::Update,
            &api_error(StatusCode::BAD_REQUEST, "invalid_sso_idp"),
        );
        assert!(
            stable.message.contains("Fix the spec"),
            "{}",
            stable.message
        );
        // Each call has a new request id: in the message it would rewrite the status each time.
        assert!(!stable.message.contains("request-id-test-1"));
        assert_eq!(stable.request_id.as_deref(), Some("request-id-test-1"));
        let transient = failure_for(
            Call::Update,
            &api_error(StatusCode::SERVICE_UNAVAILABLE, "x"),
        );
        assert!(transient.message.contains("retries with backoff"));
    }

    #[test]
    fn a_refused_member_session_names_the_action_and_the_resource() {
        let error = api_error(StatusCode::FORBIDDEN, "session_authorization_error");
        let failure = failure_for(Call::Update, &error);
        assert_eq!(failure.reason, "Forbidden");
        assert!(
            failure.message.contains("update on stytch.sso"),
            "{}",
            failure.message
        );
        let failure = failure_for(Call::List, &error);
        assert!(
            failure.message.contains("get on stytch.sso"),
            "{}",
            failure.message
        );
    }

    #[test]
    fn an_unknown_or_expired_session_is_session_invalid() {
        for error_type in ["session_not_found", "session_expired"] {
            let failure = failure_for(Call::List, &api_error(StatusCode::NOT_FOUND, error_type));
            assert_eq!(failure.reason, "SessionInvalid");
        }
    }

    #[test]
    fn jitter_only_shortens_and_by_at_most_ten_percent() {
        let interval = Duration::from_secs(600);
        for _ in 0..1000 {
            let delay = jittered(interval);
            assert!(
                delay <= interval && delay >= Duration::from_secs(540),
                "{delay:?}"
            );
        }
    }

    fn object(namespace: &str, name: &str, created: i64, connection_id: &str) -> OidcConnection {
        let mut object = OidcConnection::new(
            name,
            crate::crd::OidcConnectionSpec {
                organization_id: Some("org".into()),
                connection_id: connection_id.into(),
                ..Default::default()
            },
        );
        object.metadata.namespace = Some(namespace.into());
        let time = jiff::Timestamp::from_second(created).unwrap();
        object.metadata.creation_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(time));
        object
    }

    #[test]
    fn the_oldest_object_owns_a_connection_and_the_newer_one_conflicts() {
        let old = object("a", "first", 10, "c1");
        let new = object("b", "second", 20, "c1");
        let other = object("a", "other", 5, "c2");
        let all = [old.clone(), new.clone(), other];
        assert_eq!(
            conflicting_owner(&new, &all).and_then(|o| o.metadata.name.clone()),
            Some("first".into())
        );
        assert!(conflicting_owner(&old, &all).is_none());
    }

    #[test]
    fn ties_in_creation_time_are_broken_by_namespace_and_name() {
        let a = object("a", "x", 10, "c1");
        let b = object("b", "x", 10, "c1");
        assert!(conflicting_owner(&a, [&a, &b]).is_none());
        assert!(conflicting_owner(&b, [&a, &b]).is_some());
    }

    #[test]
    fn an_object_being_deleted_gives_up_its_claim() {
        let mut old = object("a", "first", 10, "c1");
        old.metadata.deletion_timestamp = old.metadata.creation_timestamp.clone();
        let new = object("b", "second", 20, "c1");
        assert!(conflicting_owner(&new, [&old, &new]).is_none());
    }

    #[test]
    fn stytch_field_names_map_to_spec_field_names() {
        assert_eq!(spec_field_name("display_name"), "displayName");
        assert_eq!(spec_field_name("issuer"), "issuer");
        assert_eq!(spec_field_name("attribute_mapping"), "attributeMapping");
    }

    #[test]
    fn objects_start_at_stable_offsets_spread_within_the_tick() {
        let interval = Duration::from_secs(600);
        let offsets: Vec<Duration> = (0..100)
            .map(|index| offset_in_tick(&format!("identity/connection-{index}"), interval))
            .collect();
        assert!(offsets.iter().all(|offset| *offset < TICK_SPREAD));
        let early = offsets.iter().filter(|o| **o < TICK_SPREAD / 2).count();
        assert!(
            (25..=75).contains(&early),
            "{early} of 100 in the first half"
        );
        assert_eq!(
            offset_in_tick("identity/connection-7", interval),
            offsets[7]
        );
        // A short interval gets a proportionally short spread.
        let short = Duration::from_secs(2);
        assert!(offset_in_tick("identity/connection-7", short) < short / 100);
    }

    #[test]
    fn objects_of_one_organization_resync_on_the_same_ticks() {
        let interval = Duration::from_secs(600);
        let start = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        // Two objects of one organization, reconciled 100 s apart, land on the same ticks.
        let first = start + until_next_tick("org-a", interval, start);
        let later = start + Duration::from_secs(100);
        let second = later + until_next_tick("org-a", interval, later);
        let gap = first.max(second).duration_since(first.min(second)).unwrap();
        assert_eq!(gap.as_millis() % interval.as_millis(), 0, "{gap:?}");
        // The next tick after that one is exactly one interval later.
        let next = first + until_next_tick("org-a", interval, first);
        assert_eq!(next.duration_since(first).unwrap(), interval);
    }

    #[test]
    fn the_next_tick_is_between_half_and_one_and_a_half_intervals_away() {
        let interval = Duration::from_secs(600);
        for offset in (0..1200).step_by(7) {
            let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000 + offset);
            let until = until_next_tick("org-a", interval, now);
            assert!(
                until >= interval / 2 && until <= interval * 3 / 2,
                "{until:?}"
            );
        }
    }

    #[test]
    fn organizations_spread_over_the_interval() {
        let interval = Duration::from_secs(600);
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        // 500 organizations over 600 s average 4 per 5 s window; one phase would put 500 in one.
        let mut per_window = [0u32; 120];
        for index in 0..500 {
            let until = until_next_tick(&format!("organization-{index}"), interval, now);
            let window = ((until.as_secs() - 300) / 5).min(119) as usize;
            per_window[window] += 1;
        }
        assert!(per_window.iter().all(|n| *n < 20), "{per_window:?}");
    }

    #[test]
    fn the_paused_annotation_must_say_true() {
        let mut object = OidcConnection::new("a", Default::default());
        assert!(!is_paused(&object));
        object.metadata.annotations =
            Some([(PAUSED_ANNOTATION.to_owned(), "true".to_owned())].into());
        assert!(is_paused(&object));
        object.metadata.annotations =
            Some([(PAUSED_ANNOTATION.to_owned(), "false".to_owned())].into());
        assert!(!is_paused(&object));
    }
}
