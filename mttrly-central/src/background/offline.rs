//! The offline sweep: agents judged offline (or back) raise or resolve their alerts.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::db;
use crate::state::Central;

/// Judges agents offline and raises or resolves their alerts, once a second.
///
/// Nobody is judged offline during the grace period after start: every agent is disconnected
/// when central starts, and judging then opened (and a moment later resolved) a critical alert for
/// every server on every restart. Agents that come back resolve nothing and open nothing; one
/// that does not is judged when the grace ends, as if central had been up all along.
pub(super) async fn offline_sweeper(central: Arc<Central>, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let grace_ends =
        db::now_ms().saturating_add(i64::try_from(central.config.offline_grace().as_millis()).unwrap_or(i64::MAX));
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let now = db::now_ms();
                for (server, account, status, _) in central.agents.snapshot(now) {
                    if now < grace_ends && status == mttrly_core::tools::common::ConnectionStatus::Offline {
                        continue;
                    }
                    let changes = central.alerts.on_status(&account, &server, status, now);
                    central.write_alerts(&account, &server, changes);
                }
            }
            _ = shutdown.changed() => return,
        }
    }
}
