//! The checks an authenticated Stytch call passes before it does anything: credentials, the
//! project's rate limit, the member session's rights (RBAC), then the fault rules, in that order
//! (so a faulted call was at least a valid, permitted call, and a 401 or 403 never uses up a
//! fault rule).

use std::time::{Duration, Instant};

use crate::{
    api::{Caller, Credentials, Failure, MemberSessionHeader, StytchError},
    app::{self, App},
    faults::{FaultAction, Operation},
    rbac::{self, Denial},
    unconfirmed,
};

pub async fn admit(
    app: &App,
    caller: &Caller,
    operation: Operation,
    organization: &str,
) -> Result<(), Failure> {
    let project_id = authenticate(app, caller.credentials.as_ref())?;

    if !app.rate_limiter().try_acquire(project_id, Instant::now()) {
        return Err(StytchError::too_many_requests().into());
    }

    if let Some(action) = rbac::action_of(operation) {
        authorize(app, &caller.member_session, organization, action)?;
    }

    match fault_for(app, operation, organization) {
        Some(action) => apply(action, operation).await,
        None => Ok(()),
    }
}

fn authenticate<'a>(
    app: &App,
    credentials: Option<&'a Credentials>,
) -> Result<&'a str, StytchError> {
    let credentials = credentials.ok_or_else(StytchError::unauthorized_credentials)?;
    if app
        .store()
        .authenticates(&credentials.project_id, &credentials.secret)
    {
        Ok(&credentials.project_id)
    } else {
        Err(StytchError::unauthorized_credentials())
    }
}

/// Without a member-session header the call has the project's full rights.
fn authorize(
    app: &App,
    header: &MemberSessionHeader,
    organization: &str,
    action: &'static str,
) -> Result<(), StytchError> {
    let key = match header {
        MemberSessionHeader::Absent => return Ok(()),
        MemberSessionHeader::Both => return Err(unconfirmed::too_many_session_arguments()),
        MemberSessionHeader::One(key) => key,
    };

    let store = app.store();
    match rbac::authorize(&store, key, organization, action, jiff::Timestamp::now()) {
        Ok(live) => {
            tracing::debug!(
                member_id = %live.member.member_id,
                organization_id = %live.organization.organization_id,
                action,
                "member session may make the call"
            );
            Ok(())
        }
        Err(denial) => {
            tracing::debug!(?denial, action, "member session may not make the call");
            Err(refusal(&denial))
        }
    }
}

fn refusal(denial: &Denial) -> StytchError {
    match denial {
        Denial::SessionNotFound => unconfirmed::session_not_found(),
        Denial::OtherOrganization {
            member_organization_id,
            requested,
        } => unconfirmed::session_authorization_tenancy_error(member_organization_id, requested),
        Denial::NotPermitted { action, resource } => {
            unconfirmed::session_authorization_error(action, resource)
        }
    }
}

/// The action of the first fault rule for this call. A rule names an organization by id, slug
/// or external id, whichever the call's path uses.
fn fault_for(app: &App, operation: Operation, organization: &str) -> Option<FaultAction> {
    let names = app.store().organization(organization).map(|found| {
        [
            found.organization_id.clone(),
            found.slug.clone(),
            found.external_id.clone(),
        ]
    });
    let matches = |rule_organization: &str| {
        rule_organization == organization
            || names.as_ref().is_some_and(|names| {
                names
                    .iter()
                    .any(|name| !name.is_empty() && name == rule_organization)
            })
    };

    app.faults().take(operation, matches, app::now_ms())
}

async fn apply(action: FaultAction, operation: Operation) -> Result<(), Failure> {
    tracing::debug!(?operation, ?action, "fault rule applies");
    match action {
        FaultAction::Latency(latency) => {
            tokio::time::sleep(Duration::from_millis(latency.latency_ms)).await;
            Ok(())
        }
        FaultAction::Status(status) => Err(StytchError::from_fault(&status).into()),
        FaultAction::Hang(_) => Err(Failure::Hang),
        FaultAction::Drop(_) => Err(Failure::Drop),
    }
}
