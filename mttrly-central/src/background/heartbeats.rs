//! The heartbeat flush: agents' last-seen times and latest metrics live in memory (the registry)
//! and reach the database in one batch every two seconds, not one write per heartbeat.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::state::Central;

/// Writes what changed since the last flush.
pub(crate) async fn flush(central: &Central) {
    let dirty = central.agents.take_dirty();
    if dirty.is_empty() {
        return;
    }
    let batch: Vec<_> = dirty
        .into_iter()
        .map(|(id, seen, metrics)| (id, seen, metrics.and_then(|m| serde_json::to_string(&m).ok()).unwrap_or_default()))
        .collect();
    if let Err(e) = central.db.fleet().flush_heartbeats(batch).await {
        tracing::error!(error = %e, "cannot flush heartbeats");
    }
}

/// Flushes every two seconds until shutdown.
pub(super) async fn heartbeat_flusher(central: Arc<Central>, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    loop {
        tokio::select! {
            _ = tick.tick() => flush(&central).await,
            _ = shutdown.changed() => return,
        }
    }
}
