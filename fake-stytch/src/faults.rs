//! Fault rules: scripted misbehaviour of the Stytch API, set by tests through `/_fake/faults`.
//!
//! Rules are checked in order for every authenticated call and the first rule that matches the
//! call's operation and organization applies. A rule with `times` applies to that many matching
//! calls and then disappears; a rule with `until_ms` disappears at that time (milliseconds since
//! the Unix epoch). Expired rules are removed whenever the rules are read or matched.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How long a `hang` holds a call before giving up and closing the connection.
pub const HANG_CAP: Duration = Duration::from_secs(10 * 60);

/// The Stytch calls the fake serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    List,
    Create,
    Update,
    Delete,
    /// `POST /v1/b2b/sessions/authenticate`.
    AuthenticateSession,
}

/// Which calls a rule applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OperationFilter {
    List,
    Create,
    Update,
    Delete,
    AuthenticateSession,
    Any,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRule {
    pub operation: OperationFilter,
    /// Matches the organization's id, slug or external id; any organization when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_id: Option<String>,
    pub action: FaultAction,
    /// How many more matching calls the rule applies to; unlimited when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<u32>,
    /// When the rule expires, in milliseconds since the Unix epoch; never when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until_ms: Option<u64>,
}

/// What a matching call gets instead of (or before) its normal answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FaultAction {
    /// Wait, then answer normally.
    Latency(LatencyAction),
    /// Answer with this status and a Stytch error body.
    Status(StatusAction),
    /// Never answer; the connection is closed after [`HANG_CAP`].
    Hang(HangAction),
    /// Close the TCP connection without answering.
    Drop(DropAction),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatencyAction {
    pub latency_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusAction {
    pub status: u16,
    /// Sent as a `Retry-After` header only when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_secs: Option<u64>,
    /// Defaults to Stytch's name for 429, 500 and 503; required for any other status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HangAction {
    pub hang: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DropAction {
    pub drop: bool,
}

/// Stytch's error type and message for the statuses it documents.
pub fn known_status_error(status: u16) -> Option<(&'static str, &'static str)> {
    match status {
        429 => Some(("too_many_requests", "Too many requests have been made.")),
        500 => Some((
            "internal_server_error",
            "Oops, something seems to have gone wrong.",
        )),
        503 => Some((
            "server_unavailable",
            "The server is temporarily unavailable.",
        )),
        _ => None,
    }
}

impl OperationFilter {
    fn covers(self, operation: Operation) -> bool {
        match self {
            Self::Any => true,
            Self::List => operation == Operation::List,
            Self::Create => operation == Operation::Create,
            Self::Update => operation == Operation::Update,
            Self::Delete => operation == Operation::Delete,
            Self::AuthenticateSession => operation == Operation::AuthenticateSession,
        }
    }
}

impl FaultRule {
    /// Rejects rules that parse but cannot mean anything.
    pub fn validate(&self) -> Result<(), String> {
        if self.times == Some(0) {
            return Err("times must be at least 1".into());
        }

        match &self.action {
            FaultAction::Hang(HangAction { hang: false }) => Err("hang must be true".into()),
            FaultAction::Drop(DropAction { drop: false }) => Err("drop must be true".into()),
            FaultAction::Status(action) if !(400..=599).contains(&action.status) => Err(format!(
                "status {} is not an error status (400-599)",
                action.status
            )),
            FaultAction::Status(action)
                if action.error_type.is_none() && known_status_error(action.status).is_none() =>
            {
                Err(format!("status {} needs an error_type", action.status))
            }
            _ => Ok(()),
        }
    }

    fn expired(&self, now_ms: u64) -> bool {
        self.until_ms.is_some_and(|until| until <= now_ms)
    }
}

/// The ordered list of fault rules in force.
#[derive(Debug, Default)]
pub struct FaultRules {
    rules: Vec<FaultRule>,
}

impl FaultRules {
    pub fn replace(&mut self, rules: Vec<FaultRule>) {
        self.rules = rules;
    }

    pub fn clear(&mut self) {
        self.rules.clear();
    }

    /// The rules still in force, with their remaining `times`.
    pub fn current(&mut self, now_ms: u64) -> Vec<FaultRule> {
        self.rules.retain(|rule| !rule.expired(now_ms));
        self.rules.clone()
    }

    /// The action of the first rule in force that covers `operation` and an organization for
    /// which `organization_matches` holds; consumes one of that rule's `times`.
    pub fn take(
        &mut self,
        operation: Operation,
        organization_matches: impl Fn(&str) -> bool,
        now_ms: u64,
    ) -> Option<FaultAction> {
        self.rules.retain(|rule| !rule.expired(now_ms));

        let index = self.rules.iter().position(|rule| {
            rule.operation.covers(operation)
                && rule
                    .organization_id
                    .as_deref()
                    .is_none_or(&organization_matches)
        })?;

        let rule = &mut self.rules[index];
        let action = rule.action.clone();
        if let Some(times) = &mut rule.times {
            *times -= 1;
            if *times == 0 {
                self.rules.remove(index);
            }
        }
        Some(action)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn rules(value: serde_json::Value) -> FaultRules {
        let mut rules = FaultRules::default();
        rules.replace(serde_json::from_value(value).unwrap());
        rules
    }

    fn status_of(action: Option<FaultAction>) -> Option<u16> {
        match action {
            Some(FaultAction::Status(action)) => Some(action.status),
            _ => None,
        }
    }

    #[test]
    fn each_action_form_parses_to_its_variant() {
        let parsed: Vec<FaultAction> = serde_json::from_value(json!([
            {"latency_ms": 5},
            {"status": 429, "retry_after_secs": 2},
            {"hang": true},
            {"drop": true},
        ]))
        .unwrap();

        assert!(matches!(
            parsed[0],
            FaultAction::Latency(LatencyAction { latency_ms: 5 })
        ));
        assert!(matches!(&parsed[1], FaultAction::Status(s) if s.retry_after_secs == Some(2)));
        assert!(matches!(parsed[2], FaultAction::Hang(_)));
        assert!(matches!(parsed[3], FaultAction::Drop(_)));
    }

    #[test]
    fn an_action_mixing_two_forms_is_rejected() {
        let parsed = serde_json::from_value::<FaultAction>(json!({"status": 500, "hang": true}));
        assert!(parsed.is_err());
    }

    #[test]
    fn an_unusual_status_needs_an_error_type() {
        let rule = |action| FaultRule {
            operation: OperationFilter::Any,
            organization_id: None,
            action,
            times: None,
            until_ms: None,
        };
        let status = |status, error_type: Option<&str>| {
            FaultAction::Status(StatusAction {
                status,
                retry_after_secs: None,
                error_type: error_type.map(str::to_owned),
                error_message: None,
            })
        };

        assert!(rule(status(418, None)).validate().is_err());
        assert!(rule(status(418, Some("teapot"))).validate().is_ok());
        assert!(rule(status(503, None)).validate().is_ok());
        assert!(rule(status(200, Some("fine"))).validate().is_err());
        assert!(
            rule(FaultAction::Hang(HangAction { hang: false }))
                .validate()
                .is_err()
        );
    }

    #[test]
    fn the_first_matching_rule_wins() {
        let mut rules = rules(json!([
            {"operation": "update", "action": {"status": 503}},
            {"operation": "any", "action": {"status": 500}},
        ]));

        assert_eq!(
            status_of(rules.take(Operation::Update, |_| true, 0)),
            Some(503)
        );
        assert_eq!(
            status_of(rules.take(Operation::List, |_| true, 0)),
            Some(500)
        );
    }

    #[test]
    fn a_rule_for_one_organization_leaves_the_others_alone() {
        let mut rules = rules(json!([
            {"operation": "any", "organization_id": "acme", "action": {"status": 500}},
        ]));

        assert_eq!(rules.take(Operation::List, |name| name == "other", 0), None);
        assert_eq!(
            status_of(rules.take(Operation::List, |name| name == "acme", 0)),
            Some(500)
        );
    }

    #[test]
    fn a_rule_with_times_expires_after_that_many_matches() {
        let mut rules = rules(json!([
            {"operation": "list", "action": {"status": 500}, "times": 2},
        ]));

        assert!(rules.take(Operation::List, |_| true, 0).is_some());
        assert_eq!(rules.current(0)[0].times, Some(1));
        assert!(rules.take(Operation::List, |_| true, 0).is_some());
        assert!(rules.take(Operation::List, |_| true, 0).is_none());
        assert!(rules.current(0).is_empty());
    }

    #[test]
    fn a_call_of_another_operation_does_not_use_up_a_rule() {
        let mut rules = rules(json!([
            {"operation": "delete", "action": {"drop": true}, "times": 1},
        ]));

        assert!(rules.take(Operation::List, |_| true, 0).is_none());
        assert!(matches!(
            rules.take(Operation::Delete, |_| true, 0),
            Some(FaultAction::Drop(_))
        ));
    }

    #[test]
    fn a_rule_past_until_ms_no_longer_applies() {
        let mut rules = rules(json!([
            {"operation": "any", "action": {"status": 500}, "until_ms": 1_000},
        ]));

        assert!(rules.take(Operation::Create, |_| true, 999).is_some());
        assert!(rules.take(Operation::Create, |_| true, 1_000).is_none());
        assert!(rules.current(1_000).is_empty());
    }
}
