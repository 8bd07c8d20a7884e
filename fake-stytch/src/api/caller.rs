//! Who makes a Stytch API call: the project, by its Basic-auth credentials, and optionally a
//! member on whose behalf the call is made, by a member-session header.

use axum::http::HeaderMap;

use crate::{api::Credentials, redact, sessions::SessionKey};

/// Carries a member's session token.
pub const MEMBER_SESSION_HEADER: &str = "x-stytch-member-session";

/// Carries a member's session JWT.
pub const MEMBER_SESSION_JWT_HEADER: &str = "x-stytch-member-sessionjwt";

/// What the pipeline learns about the caller from the request's headers.
#[derive(Clone, Debug)]
pub struct Caller {
    pub credentials: Option<Credentials>,
    pub member_session: MemberSessionHeader,
}

/// The member-session header of a request. An empty header still counts as sent: it names no
/// session, so RBAC refuses it, and the call log shows that it was sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MemberSessionHeader {
    Absent,
    One(SessionKey),
    /// Both headers at once, which the fake refuses.
    Both,
}

impl Caller {
    pub fn from_headers(headers: &HeaderMap) -> Self {
        Self {
            credentials: Credentials::from_headers(headers),
            member_session: MemberSessionHeader::from_headers(headers),
        }
    }
}

impl MemberSessionHeader {
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let value = |name: &str| {
            headers
                .get(name)
                .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
        };
        match (
            value(MEMBER_SESSION_HEADER),
            value(MEMBER_SESSION_JWT_HEADER),
        ) {
            (None, None) => Self::Absent,
            (Some(token), None) => Self::One(SessionKey::Token(token)),
            (None, Some(jwt)) => Self::One(SessionKey::Jwt(jwt)),
            (Some(_), Some(_)) => Self::Both,
        }
    }

    /// `token`, `jwt` or `both` as the call log shows it; `None` when no header was sent.
    pub fn kind(&self) -> Option<&'static str> {
        match self {
            Self::Absent => None,
            Self::One(key) => Some(key.kind()),
            Self::Both => Some("both"),
        }
    }

    /// The fingerprint of the one header's value; `""` for an empty header.
    pub fn fingerprint(&self) -> Option<String> {
        match self {
            Self::One(key) => Some(redact::conceal(key.secret())),
            Self::Absent | Self::Both => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(name, value)| {
                let name = axum::http::HeaderName::from_static(name);
                (name, HeaderValue::from_str(value).unwrap())
            })
            .collect()
    }

    #[test]
    fn either_header_names_a_session_by_its_kind() {
        let token = MemberSessionHeader::from_headers(&headers(&[(MEMBER_SESSION_HEADER, "t")]));
        let jwt = MemberSessionHeader::from_headers(&headers(&[(MEMBER_SESSION_JWT_HEADER, "j")]));

        assert_eq!(
            token,
            MemberSessionHeader::One(SessionKey::Token("t".into()))
        );
        assert_eq!(jwt.kind(), Some("jwt"));
        assert_eq!(jwt.fingerprint(), Some(redact::fingerprint("j")));
    }

    #[test]
    fn both_headers_or_none_are_told_apart_from_one() {
        let both = headers(&[
            (MEMBER_SESSION_HEADER, "t"),
            (MEMBER_SESSION_JWT_HEADER, "j"),
        ]);

        assert_eq!(
            MemberSessionHeader::from_headers(&both),
            MemberSessionHeader::Both
        );
        let absent = MemberSessionHeader::from_headers(&HeaderMap::new());
        assert_eq!(absent.kind(), None);
        assert_eq!(absent.fingerprint(), None);
    }
}
