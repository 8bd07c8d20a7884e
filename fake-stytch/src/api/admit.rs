//! The checks an authenticated Stytch call passes before it does anything: credentials, the
//! project's rate limit, then the fault rules, in that order (so a faulted call was at least a
//! valid call, and a 401 never uses up a fault rule).

use std::time::{Duration, Instant};

use crate::{
    api::{Credentials, Failure, StytchError},
    app::{self, App},
    faults::{FaultAction, Operation},
};

pub async fn admit(
    app: &App,
    credentials: Option<&Credentials>,
    operation: Operation,
    organization: &str,
) -> Result<(), Failure> {
    let project_id = authenticate(app, credentials)?;

    if !app.rate_limiter().try_acquire(project_id, Instant::now()) {
        return Err(StytchError::too_many_requests().into());
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
