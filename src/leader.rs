//! Leader election on a `coordination.k8s.io` Lease, with `kube-lease-manager`.
//!
//! Only the leader runs the controller. A replica that loses the lease, or can no longer renew
//! it, stops at once and exits with an error, so its Deployment restarts it as a follower: two
//! replicas never write at the same time for longer than the lease's grace period.

use std::time::Duration;

use kube::Client;
use kube_lease_manager::LeaseManagerBuilder;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::{Error, Result};

/// Where the lease lives and how long it lasts.
#[derive(Clone, Debug)]
pub struct LeaseConfig {
    pub namespace: String,
    pub name: String,
    /// Unique per replica: the Pod's name in a cluster.
    pub identity: String,
    /// How long a lease stays valid without renewal; a follower takes over after this.
    pub duration: Duration,
}

/// Leadership, once acquired: resolves [`Leadership::lost`] when it ends.
pub struct Leadership {
    state: watch::Receiver<bool>,
}

/// Waits until this replica holds the lease.
pub async fn acquire(client: Client, config: &LeaseConfig) -> Result<Leadership> {
    let duration = config.duration.as_secs().max(2);
    // Renew a third of the duration before expiry, as client-go's defaults (15 s / 10 s) do.
    let grace = (duration / 3).max(1);
    let manager = LeaseManagerBuilder::new(client, &config.name)
        .with_namespace(&config.namespace)
        .with_identity(&config.identity)
        .with_duration(duration)
        .with_grace(grace)
        .build()
        .await
        .map_err(|e| Error::Config(format!("cannot set up leader election: {e}")))?;
    let (mut state, task) = manager.watch().await;
    // The task ends only on a fatal error; the channel closing then reads as "not leader".
    tokio::spawn(async move {
        if let Ok(Err(error)) = task.await {
            warn!(%error, "leader election stopped");
        }
    });
    info!(
        lease = config.name,
        identity = config.identity,
        "waiting to become the leader"
    );
    state
        .wait_for(|leader| *leader)
        .await
        .map_err(|_| Error::Config("leader election stopped before acquiring the lease".into()))?;
    info!(
        lease = config.name,
        identity = config.identity,
        "became the leader"
    );
    Ok(Leadership { state })
}

impl Leadership {
    /// Resolves when the lease is lost or can no longer be renewed.
    pub async fn lost(mut self) {
        let _ = self.state.wait_for(|leader| !*leader).await;
    }
}
