//! The expiry sweep: pending actions past their expiry are expired once a second.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::state::Central;

/// Runs the action engine's expiry once a second until shutdown.
pub(super) async fn action_expirer(central: Arc<Central>, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if let Err(e) = crate::actions::expire(&central).await {
                    tracing::error!(error = %e, "cannot expire pending actions");
                }
            }
            _ = shutdown.changed() => return,
        }
    }
}
