//! The investigation sweep: idle investigations close and lapsed bypasses expire, every few
//! seconds (`crate::investigations::sweep`).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::state::Central;

/// How often the sweep runs. Enforcement never waits for it (a slot is only taken while the
/// bypass's time has not run out), so this only bounds how late the audit log says so.
const EVERY: Duration = Duration::from_secs(5);

/// Runs the sweep until shutdown.
pub(super) async fn investigation_sweeper(central: Arc<Central>, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(EVERY);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if let Err(e) = crate::investigations::sweep(&central).await {
                    tracing::error!(error = %e, "cannot sweep investigations");
                }
            }
            _ = shutdown.changed() => return,
        }
    }
}
