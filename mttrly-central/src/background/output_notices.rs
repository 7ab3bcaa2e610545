//! Announces output that arrived inside a running action's notice window once the window closes
//! (`agents::output`): without it, a chunk printed just after a notice would stay unseen on the
//! action's page until the next chunk or the result.

use std::sync::Arc;

use tokio::sync::watch;

use crate::agents::output::NOTICE_EVERY;
use crate::state::Central;

/// Flushes pending output notices every [`NOTICE_EVERY`] until shutdown.
pub(super) async fn output_notices(central: Arc<Central>, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(NOTICE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => central.agents.live_output().flush(),
            _ = shutdown.changed() => return,
        }
    }
}
