//! The alert writer: the one task that writes the alert engine's changes, in the order they were
//! decided (the engine decides in memory; this keeps the database in the same order).

use std::sync::Arc;

use tokio::sync::{mpsc, watch};

use crate::db::alerts::AlertChange;
use crate::state::Central;

/// Writes each batch of changes as it comes; on shutdown, writes what is already queued, then stops.
pub(super) async fn alert_writer(
    central: Arc<Central>,
    mut rx: mpsc::UnboundedReceiver<Vec<AlertChange>>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let changes = tokio::select! {
            changes = rx.recv() => match changes {
                Some(changes) => changes,
                None => return,
            },
            _ = shutdown.changed() => {
                // Write what is already queued, then stop.
                let mut rest = Vec::new();
                while let Ok(changes) = rx.try_recv() {
                    rest.extend(changes);
                }
                if !rest.is_empty() && let Err(e) = central.db.fleet().apply_alert_changes(rest).await {
                    tracing::error!(error = %e, "cannot write alert changes");
                }
                return;
            }
        };
        if let Err(e) = central.db.fleet().apply_alert_changes(changes).await {
            tracing::error!(error = %e, "cannot write alert changes");
        }
    }
}
