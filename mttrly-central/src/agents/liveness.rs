//! Liveness: heartbeats, the online / offline judgement, and the batch of heartbeats not yet
//! written to SQLite.
//!
//! A heartbeat only updates memory and marks the entry dirty; the heartbeat flusher takes the
//! dirty entries every couple of seconds and writes them in one transaction, so ten thousand
//! agents heartbeating every ten seconds cost one small transaction, not a thousand writes a
//! second.

use mttrly_core::ids::{AccountId, ServerId};
use mttrly_core::tools::common::{ConnectionStatus, HostMetrics};

use super::live::{LiveAgent, LiveTable};

/// The per-server view the tools read.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveStatus {
    /// Online, offline or never connected.
    pub status: ConnectionStatus,
    /// The latest heartbeat (ms).
    pub last_seen_ms: Option<i64>,
    /// The latest metrics.
    pub metrics: Option<HostMetrics>,
}

/// Online when a stream is open and the last heartbeat is at most `offline_after_ms` old;
/// pending when the server was never seen.
pub(super) fn classify(agent: &LiveAgent, now_ms: i64, offline_after_ms: i64) -> ConnectionStatus {
    match (&agent.connection, agent.last_seen_ms) {
        (_, None) => ConnectionStatus::Pending,
        (Some(_), Some(seen)) if now_ms - seen <= offline_after_ms => ConnectionStatus::Online,
        _ => ConnectionStatus::Offline,
    }
}

impl LiveTable {
    /// Records a heartbeat that came on connection `id`; one from a replaced stream is ignored.
    pub(super) fn heartbeat(&self, server: &ServerId, id: u64, metrics: HostMetrics, now_ms: i64) {
        if let Some(agent) = self.lock().get_mut(server)
            && agent.connection.as_ref().is_some_and(|c| c.id == id)
        {
            agent.last_seen_ms = Some(now_ms);
            // Reuse the box: a heartbeat every ten seconds per agent need not reallocate.
            match &mut agent.metrics {
                Some(current) => **current = metrics,
                None => agent.metrics = Some(Box::new(metrics)),
            }
            agent.dirty = true;
        }
    }

    /// The server's live status.
    pub(super) fn status(&self, server: &ServerId, now_ms: i64, offline_after_ms: i64) -> LiveStatus {
        match self.lock().get(server) {
            None => LiveStatus { status: ConnectionStatus::Pending, last_seen_ms: None, metrics: None },
            Some(agent) => LiveStatus {
                status: classify(agent, now_ms, offline_after_ms),
                last_seen_ms: agent.last_seen_ms,
                metrics: agent.metrics.as_deref().cloned(),
            },
        }
    }

    /// Every known server with its account, status and last heartbeat.
    pub(super) fn snapshot(
        &self,
        now_ms: i64,
        offline_after_ms: i64,
    ) -> Vec<(ServerId, AccountId, ConnectionStatus, Option<i64>)> {
        self.lock()
            .iter()
            .map(|(id, a)| (id.clone(), a.account_id.clone(), classify(a, now_ms, offline_after_ms), a.last_seen_ms))
            .collect()
    }

    /// Takes the heartbeats not yet written to the database.
    pub(super) fn take_dirty(&self) -> Vec<(ServerId, i64, Option<HostMetrics>)> {
        let mut agents = self.lock();
        let mut out = Vec::new();
        for (id, agent) in agents.iter_mut().filter(|(_, a)| a.dirty) {
            agent.dirty = false;
            if let Some(seen) = agent.last_seen_ms {
                out.push((id.clone(), seen, agent.metrics.as_deref().cloned()));
            }
        }
        out
    }
}
