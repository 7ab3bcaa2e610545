//! The heartbeat flush: agents' last-seen times and latest metrics live in memory (the registry)
//! and reach the database in one batch every two seconds, not one write per heartbeat. Once a
//! minute the same transaction also appends a metrics sample per fresh server to the history the
//! servers' charts read (`db::metrics`): the registry keeps no history of its own, and the flusher
//! remembers one number, the minute it last sampled.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::db::{self, metrics::MINUTE_MS};
use crate::state::Central;

/// Writes what changed since the last flush, and a metrics sample taken at `sample_at` (ms) if
/// given.
pub(crate) async fn flush_with_sample(central: &Central, sample_at: Option<i64>) {
    let dirty = central.agents.take_dirty();
    if dirty.is_empty() && sample_at.is_none() {
        return;
    }
    let batch: Vec<_> = dirty
        .into_iter()
        .map(|(id, seen, metrics)| (id, seen, metrics.and_then(|m| serde_json::to_string(&m).ok()).unwrap_or_default()))
        .collect();
    if let Err(e) = central.db.fleet().flush_heartbeats(batch, sample_at).await {
        tracing::error!(error = %e, "cannot flush heartbeats");
    }
}

/// Writes what changed since the last flush (at shutdown: no sample).
pub(crate) async fn flush(central: &Central) {
    flush_with_sample(central, None).await;
}

/// The sampling clock: whether a flush at `now_ms` takes a sample (the first flush of each
/// minute does), remembering the minute taken.
#[derive(Debug, Default)]
struct Sampler {
    last_minute: Option<i64>,
}

impl Sampler {
    /// `Some(start of the minute)` when this minute has no sample yet.
    fn due(&mut self, now_ms: i64) -> Option<i64> {
        let minute = now_ms.div_euclid(MINUTE_MS);
        if self.last_minute == Some(minute) {
            return None;
        }
        self.last_minute = Some(minute);
        Some(minute * MINUTE_MS)
    }
}

/// Flushes every two seconds until shutdown, sampling metrics once a minute.
pub(super) async fn heartbeat_flusher(central: Arc<Central>, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    let mut sampler = Sampler::default();
    loop {
        tokio::select! {
            _ = tick.tick() => flush_with_sample(&central, sampler.due(db::now_ms())).await,
            _ = shutdown.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_sample_a_minute_at_the_minutes_start() {
        let mut sampler = Sampler::default();
        let start = 1_800_000_000_000 - 1_800_000_000_000 % MINUTE_MS;
        assert_eq!(sampler.due(start + 1_500), Some(start), "the first flush samples");
        assert_eq!(sampler.due(start + 3_500), None);
        assert_eq!(sampler.due(start + 59_999), None);
        assert_eq!(sampler.due(start + 61_000), Some(start + MINUTE_MS), "the next minute");
        assert_eq!(sampler.due(start + 200_000), Some(start + 3 * MINUTE_MS), "a stall skips, not back-fills");
    }
}
