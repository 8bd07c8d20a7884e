//! Members of organizations and their member sessions.
//!
//! # What happens
//! A member belongs to one organization and holds roles by id. A member session is what a
//! member presents to act: either its session token or its session JWT, which are two names for
//! the same session. Sessions come from the seed or from `POST /_fake/sessions`; a session is
//! live until its `expires_at` and until it is revoked (removed) through the admin API.
//!
//! # What is guaranteed
//! Session tokens and JWTs are secrets: no `Debug` output here prints them, and everything that
//! shows a session outside the Stytch API shows fingerprints instead.
//!
//! # Known caveats
//! The JWT is only shaped like one (`header.payload.signature`, base64url): its signature is
//! random bytes that verify against no key, so only `POST /v1/b2b/sessions/authenticate` (never
//! local JWT verification) can accept it.

use std::time::Duration;

use base64::{Engine, prelude::BASE64_URL_SAFE_NO_PAD};
use jiff::Timestamp;
use rand::RngCore;
use serde::Serialize;
use serde_json::json;

use crate::{
    ids,
    state::{Organization, Store},
};

/// How long a session minted by `POST /_fake/sessions` lives when no `ttl_secs` is given:
/// Stytch's own default session duration.
pub const MINTED_SESSION_LIFETIME: Duration = Duration::from_secs(60 * 60);

/// How long a seeded session without `expires_at` lives, counted from when the seed is loaded:
/// long enough for any test run or demo, short enough to still be a real expiry.
pub const SEEDED_SESSION_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

/// A member of an organization, serialized as the state view shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Member {
    pub member_id: String,
    /// `""` when the member has none.
    pub email_address: String,
    /// The role ids assigned to the member; `stytch_member` is implied, see
    /// [`Store::member_role_ids`].
    pub roles: Vec<String>,
}

/// A member session. The organization is the member's, copied when the session is made.
#[derive(Clone, PartialEq, Eq)]
pub struct Session {
    pub member_session_id: String,
    pub session_token: String,
    pub session_jwt: String,
    pub member_id: String,
    pub organization_id: String,
    pub expires_at: Timestamp,
}

/// Shows neither the token nor the JWT.
impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("member_session_id", &self.member_session_id)
            .field("member_id", &self.member_id)
            .field("organization_id", &self.organization_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// How a caller named a session: by its token or by its JWT.
#[derive(Clone, PartialEq, Eq)]
pub enum SessionKey {
    Token(String),
    Jwt(String),
}

/// Shows which kind of key it is, never the key.
impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SessionKey::{}(..)", self.kind())
    }
}

impl SessionKey {
    /// `token` or `jwt`, as the call log names them.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Token(_) => "token",
            Self::Jwt(_) => "jwt",
        }
    }

    pub fn secret(&self) -> &str {
        match self {
            Self::Token(secret) | Self::Jwt(secret) => secret,
        }
    }

    fn names(&self, session: &Session) -> bool {
        match self {
            Self::Token(token) => *token == session.session_token,
            Self::Jwt(jwt) => *jwt == session.session_jwt,
        }
    }
}

/// A session that authenticates now, with the member and organization it acts for.
#[derive(Clone, Copy, Debug)]
pub struct LiveSession<'a> {
    pub session: &'a Session,
    pub organization: &'a Organization,
    pub member: &'a Member,
}

impl Session {
    /// A new session with a random token and a JWT-shaped random string.
    pub fn mint(member_id: &str, organization_id: &str, expires_at: Timestamp) -> Self {
        let member_session_id = ids::member_session_id();
        let session_jwt = fake_jwt(member_id, &member_session_id, expires_at);
        Self {
            member_session_id,
            session_token: BASE64_URL_SAFE_NO_PAD.encode(random_bytes::<33>()),
            session_jwt,
            member_id: member_id.to_owned(),
            organization_id: organization_id.to_owned(),
            expires_at,
        }
    }

    pub fn is_live(&self, now: Timestamp) -> bool {
        now < self.expires_at
    }
}

/// Three base64url parts. The payload carries what a Stytch session JWT would (member, session,
/// expiry) so a curious reader is not misled, but nothing in the fake reads it back.
fn fake_jwt(member_id: &str, member_session_id: &str, expires_at: Timestamp) -> String {
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": "jwk-test-fake-stytch"});
    let payload = json!({
        "sub": member_id,
        "exp": expires_at.as_second(),
        "https://stytch.com/session": {"id": member_session_id},
    });
    format!(
        "{}.{}.{}",
        BASE64_URL_SAFE_NO_PAD.encode(header.to_string()),
        BASE64_URL_SAFE_NO_PAD.encode(payload.to_string()),
        BASE64_URL_SAFE_NO_PAD.encode(random_bytes::<64>()),
    )
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0; N];
    rand::rng().fill_bytes(&mut bytes);
    bytes
}

/// `now + lifetime`, to the whole second, as Stytch shows times; saturates far in the future.
pub fn expiry_after(now: Timestamp, lifetime: Duration) -> Timestamp {
    let seconds = i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX);
    Timestamp::from_second(now.as_second().saturating_add(seconds)).unwrap_or(Timestamp::MAX)
}

impl Store {
    /// The member with this id and its organization.
    pub fn member(&self, member_id: &str) -> Option<(&Organization, &Member)> {
        self.organizations.iter().find_map(|organization| {
            organization
                .members
                .iter()
                .find(|member| member.member_id == member_id)
                .map(|member| (organization, member))
        })
    }

    /// The session `key` names, if it is live at `now` and its member still exists. Unknown,
    /// revoked and expired sessions are all simply not found, as Stytch reports them alike.
    pub fn live_session(&self, key: &SessionKey, now: Timestamp) -> Option<LiveSession<'_>> {
        let session = self.sessions.iter().find(|session| key.names(session))?;
        if !session.is_live(now) {
            return None;
        }

        let (organization, member) = self.member(&session.member_id)?;
        Some(LiveSession {
            session,
            organization,
            member,
        })
    }

    /// The organization of the session `key` names, live or not: what fault rules match on.
    pub fn session_organization_id(&self, key: &SessionKey) -> Option<&str> {
        self.sessions
            .iter()
            .find(|session| key.names(session))
            .map(|session| session.organization_id.as_str())
    }

    /// Removes the session whose token or JWT is `secret`; whether there was one.
    pub fn revoke_session(&mut self, secret: &str) -> bool {
        let before = self.sessions.len();
        self.sessions
            .retain(|session| session.session_token != secret && session.session_jwt != secret);
        self.sessions.len() != before
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_with(session: Session) -> Store {
        let member = Member {
            member_id: "member-test-1".into(),
            ..Member::default()
        };
        let organization = Organization {
            organization_id: "organization-test-1".into(),
            members: vec![member],
            ..Organization::default()
        };
        Store {
            organizations: vec![organization],
            sessions: vec![session],
            ..Store::default()
        }
    }

    fn minted(expires_at: Timestamp) -> Session {
        Session::mint("member-test-1", "organization-test-1", expires_at)
    }

    #[test]
    fn minted_sessions_have_unique_opaque_tokens_and_three_part_jwts() {
        let expires_at = Timestamp::from_second(2_000_000_000).unwrap();
        let first = minted(expires_at);
        let second = minted(expires_at);

        assert_ne!(first.session_token, second.session_token);
        assert_ne!(first.session_jwt, second.session_jwt);
        assert_eq!(first.session_token.len(), 44);
        assert_eq!(first.session_jwt.split('.').count(), 3);
        assert!(first.member_session_id.starts_with("member-session-test-"));
    }

    #[test]
    fn a_session_is_found_by_its_token_or_its_jwt_but_not_one_as_the_other() {
        let session = minted(Timestamp::MAX);
        let store = store_with(session.clone());
        let now = Timestamp::now();

        let by_token = store.live_session(&SessionKey::Token(session.session_token.clone()), now);
        let by_jwt = store.live_session(&SessionKey::Jwt(session.session_jwt.clone()), now);
        let crossed = store.live_session(&SessionKey::Jwt(session.session_token.clone()), now);

        assert_eq!(by_token.unwrap().member.member_id, "member-test-1");
        assert_eq!(
            by_jwt.unwrap().organization.organization_id,
            "organization-test-1"
        );
        assert!(crossed.is_none());
    }

    #[test]
    fn a_session_is_not_live_from_its_expiry_on() {
        let expires_at = Timestamp::from_second(1_000).unwrap();
        let session = minted(expires_at);
        let store = store_with(session.clone());
        let key = SessionKey::Token(session.session_token);

        let before = Timestamp::from_second(999).unwrap();
        assert!(store.live_session(&key, before).is_some());
        assert!(store.live_session(&key, expires_at).is_none());
    }

    #[test]
    fn neither_debug_output_shows_a_secret() {
        let session = minted(Timestamp::MAX);
        let key = SessionKey::Jwt(session.session_jwt.clone());

        let shown = format!("{session:?} {key:?}");

        assert!(!shown.contains(&session.session_token), "{shown}");
        assert!(!shown.contains(&session.session_jwt), "{shown}");
        assert!(shown.contains("SessionKey::jwt(..)"), "{shown}");
    }

    #[test]
    fn an_expiry_far_beyond_the_calendar_saturates_instead_of_failing() {
        let far = expiry_after(Timestamp::now(), Duration::from_secs(u64::MAX));
        assert_eq!(far.as_second(), Timestamp::MAX.as_second());
    }
}
