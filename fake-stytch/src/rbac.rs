//! Roles, permissions and the RBAC check of member sessions on the SSO calls.
//!
//! # What happens
//! A call that presents a member session (`X-Stytch-Member-Session` or
//! `X-Stytch-Member-SessionJWT`) runs only if the session is live, its member belongs to the
//! organization in the path, and one of the member's roles grants the call's action on
//! `stytch.sso`: `get` for list, `create`, `update` and `delete` for the others. A call without
//! a member session has the project's full rights.
//!
//! # What is assumed
//! Roles are fake-wide rather than per project. Two roles are built in: `stytch_admin` may do
//! everything (`*`) on `stytch.sso`, `stytch_member` nothing. Every member holds `stytch_member`
//! implicitly, as in Stytch. A defined role with a built-in role's id replaces it. A member's
//! role id that names no role grants nothing. The action `*` in a permission grants every
//! action on its resource.

use serde::{Deserialize, Serialize};

use crate::{
    faults::Operation,
    sessions::{LiveSession, Member, SessionKey},
    state::Store,
};

/// The resource the SSO calls are checked against.
pub const SSO_RESOURCE: &str = "stytch.sso";

/// The built-in role with every action on `stytch.sso`.
pub const ADMIN_ROLE: &str = "stytch_admin";

/// The built-in role every member holds, with no permission.
pub const MEMBER_ROLE: &str = "stytch_member";

/// The action of a permission that grants every action on its resource.
pub const ANY_ACTION: &str = "*";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Role {
    pub role_id: String,
    #[serde(default)]
    pub permissions: Vec<Permission>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Permission {
    pub resource_id: String,
    pub actions: Vec<String>,
}

/// Why a member session may not make a call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Denial {
    /// Unknown, revoked or expired, or its member is gone.
    SessionNotFound,
    /// The member belongs to another organization than the one in the path (or the path names
    /// no organization at all).
    OtherOrganization {
        member_organization_id: String,
        requested: String,
    },
    /// No role of the member grants `action` on `resource`.
    NotPermitted {
        action: &'static str,
        resource: &'static str,
    },
}

/// The action an SSO call needs on `stytch.sso`; `None` for calls that RBAC does not cover.
pub fn action_of(operation: Operation) -> Option<&'static str> {
    match operation {
        Operation::List => Some("get"),
        Operation::Create => Some("create"),
        Operation::Update => Some("update"),
        Operation::Delete => Some("delete"),
        Operation::AuthenticateSession => None,
    }
}

/// `stytch_admin` and `stytch_member` as they are when no role overrides them.
pub fn builtin_roles() -> Vec<Role> {
    vec![
        Role {
            role_id: ADMIN_ROLE.into(),
            permissions: vec![Permission {
                resource_id: SSO_RESOURCE.into(),
                actions: vec![ANY_ACTION.into()],
            }],
        },
        Role {
            role_id: MEMBER_ROLE.into(),
            permissions: vec![],
        },
    ]
}

/// Role definitions that would make a role id ambiguous or empty.
pub fn check_roles(roles: &[Role]) -> Result<(), String> {
    let mut seen = std::collections::HashSet::new();
    for role in roles {
        if role.role_id.is_empty() {
            return Err("a role needs a non-empty role_id".into());
        }
        if !seen.insert(role.role_id.as_str()) {
            return Err(format!("role {:?} is defined twice", role.role_id));
        }
    }
    Ok(())
}

/// Checks that the session `key` names may perform `action` on `stytch.sso` in the organization
/// the path names by `organization` (id, slug or external id). The checks run in the order of
/// [`Denial`]'s variants.
pub fn authorize<'a>(
    store: &'a Store,
    key: &SessionKey,
    organization: &str,
    action: &'static str,
    now: jiff::Timestamp,
) -> Result<LiveSession<'a>, Denial> {
    let live = store
        .live_session(key, now)
        .ok_or(Denial::SessionNotFound)?;

    let member_organization_id = &live.organization.organization_id;
    let requested = store
        .organization(organization)
        .map(|found| &found.organization_id);
    if requested != Some(member_organization_id) {
        return Err(Denial::OtherOrganization {
            member_organization_id: member_organization_id.clone(),
            requested: organization.to_owned(),
        });
    }

    if !store.member_may(live.member, SSO_RESOURCE, action) {
        return Err(Denial::NotPermitted {
            action,
            resource: SSO_RESOURCE,
        });
    }
    Ok(live)
}

impl Store {
    /// The roles in force: the built-in ones, each replaced by a defined role of the same id,
    /// then the other defined roles in their order.
    pub fn effective_roles(&self) -> Vec<Role> {
        let mut roles = builtin_roles();
        for defined in &self.roles {
            match roles
                .iter_mut()
                .find(|role| role.role_id == defined.role_id)
            {
                Some(builtin) => builtin.clone_from(defined),
                None => roles.push(defined.clone()),
            }
        }
        roles
    }

    /// The member's role ids as Stytch shows them: the assigned ones, then `stytch_member`
    /// unless it was assigned explicitly.
    pub fn member_role_ids<'a>(&self, member: &'a Member) -> Vec<&'a str> {
        let mut ids: Vec<&str> = vec![];
        for role_id in &member.roles {
            if !ids.contains(&role_id.as_str()) {
                ids.push(role_id);
            }
        }
        if !ids.contains(&MEMBER_ROLE) {
            ids.push(MEMBER_ROLE);
        }
        ids
    }

    /// Whether one of the member's roles grants `action` on `resource`.
    pub fn member_may(&self, member: &Member, resource: &str, action: &str) -> bool {
        let roles = self.effective_roles();
        self.member_role_ids(member)
            .into_iter()
            .filter_map(|role_id| roles.iter().find(|role| role.role_id == role_id))
            .flat_map(|role| &role.permissions)
            .filter(|permission| permission.resource_id == resource)
            .flat_map(|permission| &permission.actions)
            .any(|granted| granted == action || granted == ANY_ACTION)
    }
}

#[cfg(test)]
mod tests {
    use jiff::Timestamp;

    use super::*;
    use crate::{
        sessions::Session,
        state::{Organization, Store},
    };

    const TOKEN: &str = "session-token-editor";

    fn member(roles: &[&str]) -> Member {
        Member {
            member_id: "member-test-1".into(),
            email_address: "ada@acme.example".into(),
            roles: roles.iter().map(|role| (*role).to_owned()).collect(),
        }
    }

    fn role(role_id: &str, actions: &[&str]) -> Role {
        Role {
            role_id: role_id.into(),
            permissions: vec![Permission {
                resource_id: SSO_RESOURCE.into(),
                actions: actions.iter().map(|action| (*action).to_owned()).collect(),
            }],
        }
    }

    /// `acme` with one member holding `roles`, `globex` with none, and a live session.
    fn store(roles: &[&str]) -> Store {
        let acme = Organization {
            organization_id: "organization-test-acme".into(),
            slug: "acme".into(),
            members: vec![member(roles)],
            ..Organization::default()
        };
        let globex = Organization {
            organization_id: "organization-test-globex".into(),
            slug: "globex".into(),
            ..Organization::default()
        };
        let mut session = Session::mint("member-test-1", "organization-test-acme", Timestamp::MAX);
        session.session_token = TOKEN.into();
        Store {
            organizations: vec![acme, globex],
            roles: vec![role("sso_editor", &["get", "update"])],
            sessions: vec![session],
            ..Store::default()
        }
    }

    fn check(store: &Store, organization: &str, action: &'static str) -> Result<(), Denial> {
        let key = SessionKey::Token(TOKEN.into());
        authorize(store, &key, organization, action, Timestamp::now()).map(|_| ())
    }

    #[test]
    fn each_sso_call_needs_its_own_action() {
        let actions: Vec<_> = [
            Operation::List,
            Operation::Create,
            Operation::Update,
            Operation::Delete,
        ]
        .into_iter()
        .map(action_of)
        .collect();
        assert_eq!(
            actions,
            [Some("get"), Some("create"), Some("update"), Some("delete")]
        );
        assert_eq!(action_of(Operation::AuthenticateSession), None);
    }

    #[test]
    fn a_role_grants_exactly_its_actions() {
        let store = store(&["sso_editor"]);

        assert_eq!(check(&store, "acme", "get"), Ok(()));
        assert_eq!(check(&store, "acme", "update"), Ok(()));
        assert_eq!(
            check(&store, "acme", "delete"),
            Err(Denial::NotPermitted {
                action: "delete",
                resource: SSO_RESOURCE
            })
        );
    }

    #[test]
    fn stytch_admin_may_do_everything_and_stytch_member_nothing() {
        let admin = store(&[ADMIN_ROLE]);
        let plain = store(&[]);

        for action in ["get", "create", "update", "delete"] {
            assert_eq!(check(&admin, "acme", action), Ok(()), "{action}");
            assert!(check(&plain, "acme", action).is_err(), "{action}");
        }
    }

    #[test]
    fn a_defined_role_can_replace_a_built_in_one() {
        let mut store = store(&[]);
        store.roles = vec![role(MEMBER_ROLE, &["get"])];

        assert_eq!(check(&store, "acme", "get"), Ok(()));
        assert!(check(&store, "acme", "update").is_err());
        assert_eq!(store.effective_roles().len(), 2);
    }

    #[test]
    fn another_organization_is_a_tenancy_denial_even_for_an_admin() {
        let store = store(&[ADMIN_ROLE]);

        for requested in ["globex", "no-such-organization"] {
            assert_eq!(
                check(&store, requested, "get"),
                Err(Denial::OtherOrganization {
                    member_organization_id: "organization-test-acme".into(),
                    requested: requested.into(),
                })
            );
        }
        assert_eq!(check(&store, "organization-test-acme", "get"), Ok(()));
    }

    #[test]
    fn a_tenancy_denial_comes_before_a_missing_permission() {
        let store = store(&[]);
        assert!(matches!(
            check(&store, "globex", "delete"),
            Err(Denial::OtherOrganization { .. })
        ));
    }

    #[test]
    fn an_unknown_role_id_grants_nothing_and_stytch_member_is_always_held() {
        let store = store(&["no_such_role"]);

        assert!(check(&store, "acme", "get").is_err());
        let member = &store.organizations[0].members[0];
        assert_eq!(store.member_role_ids(member), ["no_such_role", MEMBER_ROLE]);
    }

    #[test]
    fn role_ids_must_be_present_and_unique() {
        assert!(check_roles(&[role("a", &[]), role("b", &[])]).is_ok());
        assert!(check_roles(&[role("a", &[]), role("a", &[])]).is_err());
        assert!(check_roles(&[role("", &[])]).is_err());
    }
}
