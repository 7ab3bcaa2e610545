//! Central's background loops, one module per job, each a task that runs until shutdown:
//! the alert writer, the heartbeat flush, the offline sweep, the action expiry sweep, the
//! retention purge and the running actions' output notices. `server::start` spawns them once the state is assembled.

mod alert_writer;
mod expiry;
mod heartbeats;
mod investigations;
mod offline;
mod output_notices;
mod retention;

use std::sync::Arc;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

pub(crate) use heartbeats::flush as flush_heartbeats;

use crate::db::alerts::AlertChange;
use crate::state::Central;

/// Spawns every background loop; each stops when `shutdown` turns true (the alert writer after
/// writing what is queued). `alerts` is the receiving end of `Central::write_alerts`.
pub(crate) fn spawn(
    central: &Arc<Central>,
    alerts: mpsc::UnboundedReceiver<Vec<AlertChange>>,
    shutdown: &watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    vec![
        tokio::spawn(alert_writer::alert_writer(Arc::clone(central), alerts, shutdown.clone())),
        tokio::spawn(heartbeats::heartbeat_flusher(Arc::clone(central), shutdown.clone())),
        tokio::spawn(offline::offline_sweeper(Arc::clone(central), shutdown.clone())),
        tokio::spawn(retention::retention_purger(Arc::clone(central), shutdown.clone())),
        tokio::spawn(expiry::action_expirer(Arc::clone(central), shutdown.clone())),
        tokio::spawn(investigations::investigation_sweeper(Arc::clone(central), shutdown.clone())),
        tokio::spawn(output_notices::output_notices(Arc::clone(central), shutdown.clone())),
    ]
}
