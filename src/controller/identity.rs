//! Whom a reconcile acts as, and in which organization: the project credentials (the
//! operator's default ones, or the object's `credentialsRef`), the member session of
//! `memberSessionRef` if any, and the organization, which a member session can tell.

use std::collections::HashMap;
use std::sync::Mutex;

use k8s_openapi::api::core::v1::Secret;
use kube::{Api, ResourceExt};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use super::Context;
use super::SecretName;
use super::lists::ListKey;
use super::reconciler::{self, Problem};
use crate::crd::{MemberSessionType, OidcConnection};
use crate::reconcile::Call;
use crate::reconcile::status::Failure;
use crate::secrets;
use crate::stytch::{
    AuthenticateSessionResponse, Caller, MemberSession, MemberSessionKind, ProjectCredentials,
};

/// Keys of a project credentials Secret.
pub const PROJECT_ID_KEY: &str = "project_id";
pub const PROJECT_SECRET_KEY: &str = "secret";

/// Everything needed to call Stytch for one object.
pub(super) struct Identity {
    pub credentials: ProjectCredentials,
    pub member_session: Option<MemberSession>,
    /// As the spec names it (id, slug or external id), or the session's organization id.
    pub organization_id: String,
    /// Set when the organization was learned from the member session.
    pub learned_organization_id: Option<String>,
    /// A fingerprint of project and member session (never the session itself).
    pub session_fingerprint: Option<String>,
}

impl Identity {
    pub fn caller(&self) -> Caller<'_> {
        Caller {
            credentials: &self.credentials,
            member_session: self.member_session.as_ref(),
        }
    }

    /// Which shared list of connections this caller reads.
    pub fn list_key(&self) -> ListKey {
        ListKey {
            project_id: self.credentials.project_id.clone(),
            session_fingerprint: self.session_fingerprint.clone().unwrap_or_default(),
            organization_id: self.organization_id.clone(),
        }
    }
}

/// Organizations of member sessions already authenticated, by a fingerprint of project and
/// session (never the session itself). A new session in the Secret has a new fingerprint.
#[derive(Debug, Default)]
pub struct SessionOrganizations(Mutex<HashMap<String, (String, String)>>);

impl SessionOrganizations {
    fn get(&self, key: &str) -> Option<(String, String)> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned()
    }

    fn insert(&self, key: String, organization: (String, String)) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, organization);
    }
}

/// Reads the credentials and the member session, and settles the organization.
pub(super) async fn resolve(
    object: &OidcConnection,
    context: &Context,
) -> Result<Identity, Problem> {
    let credentials = match &object.spec.credentials_ref {
        Some(reference) => {
            let name = SecretName {
                namespace: object.namespace().unwrap_or_default(),
                name: reference.name.clone(),
            };
            project_credentials(
                context,
                &name,
                "Stytch project credentials (spec.credentialsRef)",
            )
            .await?
        }
        None => {
            let name = &context.config.credentials_secret;
            project_credentials(context, name, "Stytch project credentials").await?
        }
    };
    let member_session = match &object.spec.member_session_ref {
        Some(reference) => {
            let role = "member session (spec.memberSessionRef)";
            let value = reconciler::read_object_secret(
                object,
                context,
                &reference.name,
                &reference.key,
                role,
            )
            .await?;
            let kind = match reference.type_ {
                MemberSessionType::Token => MemberSessionKind::Token,
                MemberSessionType::Jwt => MemberSessionKind::Jwt,
            };
            Some(MemberSession { kind, value })
        }
        None => None,
    };

    let spec_organization = object.spec.organization_id.clone();
    let Some(session) = &member_session else {
        let organization_id = spec_organization.ok_or_else(|| {
            Problem::Stable(Failure::new(
                "OrganizationUnknown",
                "Set spec.organizationId, or spec.memberSessionRef to take it from the session.",
            ))
        })?;
        return Ok(Identity {
            credentials,
            member_session,
            organization_id,
            learned_organization_id: None,
            session_fingerprint: None,
        });
    };
    let fingerprint = session_key(&credentials, session);
    let (session_organization, session_slug) =
        session_organization(context, &credentials, session, &fingerprint).await?;
    let organization_id = match spec_organization {
        Some(wanted) if wanted != session_organization && wanted != session_slug => {
            return Err(Problem::Stable(Failure::new(
                "OrganizationMismatch",
                format!(
                    "The member session belongs to organization {session_organization}, not to \
                     spec.organizationId {wanted}; no call was made. Use a session of a member \
                     of {wanted}, or fix spec.organizationId (by recreating this object)."
                ),
            )));
        }
        Some(wanted) => wanted,
        None => session_organization.clone(),
    };
    Ok(Identity {
        credentials,
        member_session,
        organization_id,
        learned_organization_id: Some(session_organization),
        session_fingerprint: Some(fingerprint),
    })
}

/// The session's organization (id, slug), from the cache or by authenticating the session.
async fn session_organization(
    context: &Context,
    credentials: &ProjectCredentials,
    session: &MemberSession,
    key: &str,
) -> Result<(String, String), Problem> {
    if let Some(organization) = context.sessions.get(key) {
        return Ok(organization);
    }
    let response: AuthenticateSessionResponse = context
        .stytch
        .authenticate_session(credentials, session)
        .await
        .map_err(|e| Problem::stytch(Call::AuthenticateSession, &e))?;
    let organization = response.organization;
    let value = (organization.organization_id, organization.organization_slug);
    context.sessions.insert(key.to_owned(), value.clone());
    Ok(value)
}

/// A fingerprint of project and session, so the cache never holds a session.
fn session_key(credentials: &ProjectCredentials, session: &MemberSession) -> String {
    let mut digest = Sha256::new();
    digest.update(credentials.project_id.as_bytes());
    digest.update([0]);
    digest.update(session.value.expose_secret().as_bytes());
    digest
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// The credentials in Secret `name`, read again only when the Secret may have changed (see
/// `controller::credentials`).
async fn project_credentials(
    context: &Context,
    name: &SecretName,
    role: &str,
) -> Result<ProjectCredentials, Problem> {
    let ticket = match context.credentials.get(&name.namespace, &name.name) {
        Ok(credentials) => return Ok(credentials),
        Err(ticket) => ticket,
    };
    let credentials = read_project_credentials(context, name, role).await?;
    context
        .credentials
        .keep(ticket, &name.namespace, &name.name, &credentials);
    Ok(credentials)
}

async fn read_project_credentials(
    context: &Context,
    name: &SecretName,
    role: &str,
) -> Result<ProjectCredentials, Problem> {
    let api: Api<Secret> = Api::namespaced(context.client.clone(), &name.namespace);
    let keys = [PROJECT_ID_KEY, PROJECT_SECRET_KEY];
    let read = secrets::read_keys(
        &api,
        &name.namespace,
        &name.name,
        &keys,
        role,
        "Credentials",
    );
    let Ok([project_id, secret]) = <[SecretString; 2]>::try_from(read.await?) else {
        unreachable!("read_keys returns one value per key");
    };
    Ok(ProjectCredentials {
        project_id: project_id.expose_secret().to_owned(),
        secret,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(value: &str) -> MemberSession {
        MemberSession {
            kind: MemberSessionKind::Token,
            value: value.into(),
        }
    }

    #[test]
    fn session_keys_differ_by_session_and_project_and_hide_the_session() {
        let credentials = |id: &str| ProjectCredentials {
            project_id: id.into(),
            secret: "s".into(),
        };
        let a = session_key(&credentials("p1"), &session("session-token-SENTINEL"));
        let b = session_key(&credentials("p1"), &session("other-session"));
        let c = session_key(&credentials("p2"), &session("session-token-SENTINEL"));
        assert!(a != b && a != c);
        assert!(!a.contains("SENTINEL"));
    }
}
