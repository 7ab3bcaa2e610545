//! The retention purge: resolved alerts, audit rows, proactive events (and budgets left with
//! none), deploys and their verifications past their account's plan retention go, and metrics
//! samples older than a day (`db::metrics::KEPT_MS`), and war-room notifications past retention,
//! once an hour. Knowledge is kept.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::db::{self, metrics::KEPT_MS};
use crate::state::Central;

/// How long an account on `plan` keeps its history (ms): its plan's log retention, 30 days when
/// the plan is unreadable.
fn retention_ms(plan: Option<mttrly_core::Plan>) -> i64 {
    let days = plan.map_or(30, |p| p.limits().log_retention_days);
    i64::from(days) * 24 * 60 * 60 * 1000
}

/// Purges once an hour (and once at start) until shutdown.
pub(super) async fn retention_purger(central: Arc<Central>, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let now = db::now_ms();
                let result = central.db.maintenance().purge(now, retention_ms).await;
                match result {
                    Ok(n) if n > 0 => tracing::info!(removed = n, "purged alerts and audit rows past retention"),
                    Ok(_) => {}
                    Err(e) => tracing::error!(error = %e, "alert retention purge failed"),
                }
                match central.db.maintenance().purge_incident_memory(now, retention_ms).await {
                    Ok(n) if n > 0 => tracing::info!(removed = n, "purged proactive events and deploys past retention"),
                    Ok(_) => {}
                    Err(e) => tracing::error!(error = %e, "proactive event and deploy retention purge failed"),
                }
                match central.db.maintenance().purge_notifications(now, retention_ms).await {
                    Ok(n) if n > 0 => tracing::info!(removed = n, "purged notifications past retention"),
                    Ok(_) => {}
                    Err(e) => tracing::error!(error = %e, "notification retention purge failed"),
                }
                match central.db.maintenance().purge_metrics(now - KEPT_MS).await {
                    Ok(n) if n > 0 => tracing::info!(removed = n, "purged metrics history older than a day"),
                    Ok(_) => {}
                    Err(e) => tracing::error!(error = %e, "metrics history purge failed"),
                }
            }
            _ = shutdown.changed() => return,
        }
    }
}
