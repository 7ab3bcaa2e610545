//! Liveness: heartbeats, the online / offline judgement, and the batch of heartbeats not yet
//! written to SQLite.
//!
//! A server is judged only when its status can have changed (see [`super::deadlines`]): an
//! online server is checked again at the instant its last heartbeat grows too old, a stream that
//! opens or closes and a heartbeat after an offline judgement are checked at the next sweep.
//! Between those, a judgement every second (as the sweep once did) would find the same status.
//!
//! A heartbeat only updates memory and marks the entry dirty; the heartbeat flusher takes the
//! dirty entries every couple of seconds and writes them in one transaction, so ten thousand
//! agents heartbeating every ten seconds cost one small transaction, not a thousand writes a
//! second.

use mttrly_core::ids::{AccountId, ServerId};
use mttrly_core::tools::common::{ConnectionStatus, HostMetrics};

use super::live::{LiveAgent, LiveTable, NEXT_SWEEP};

/// A server whose check came due, with the status it was found in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judged {
    /// The server.
    pub server: ServerId,
    /// Its account.
    pub account: AccountId,
    /// Online, offline or never connected, now.
    pub status: ConnectionStatus,
}

/// The per-server view the tools read.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveStatus {
    /// Online, offline or never connected.
    pub status: ConnectionStatus,
    /// The latest heartbeat (ms).
    pub last_seen_ms: Option<i64>,
    /// The latest metrics.
    pub metrics: Option<HostMetrics>,
    /// The latest stream, open or since closed (its heartbeats and metrics may be shown): which
    /// hello the status reflects.
    pub stream: Option<u64>,
}

/// The registry's count of streams at one instant: see
/// [`super::registry::AgentRegistry::mark`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HelloMark(pub(super) u64);

impl LiveStatus {
    /// Whether the stream this status reflects opened after `mark`, so that a server row read
    /// after the mark may not hold its hello yet.
    pub fn newer_than(&self, mark: HelloMark) -> bool {
        self.stream.is_some_and(|id| id >= mark.0)
    }
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
            // Back after an offline judgement: judged (and its alert resolved) at the next sweep.
            if agent.judged_offline && agent.arm(NEXT_SWEEP) {
                self.deadlines.push(NEXT_SWEEP, server.clone());
            }
        }
    }

    /// The server's live status.
    pub(super) fn status(&self, server: &ServerId, now_ms: i64, offline_after_ms: i64) -> LiveStatus {
        match self.lock().get(server) {
            None => LiveStatus { status: ConnectionStatus::Pending, last_seen_ms: None, metrics: None, stream: None },
            Some(agent) => LiveStatus {
                status: classify(agent, now_ms, offline_after_ms),
                last_seen_ms: agent.last_seen_ms,
                metrics: agent.metrics.as_deref().cloned(),
                stream: (agent.last_stream > 0).then_some(agent.last_stream),
            },
        }
    }

    /// Judges every server whose check is due at `now_ms`, and arms each online one's next check
    /// at the instant its last heartbeat grows too old (the first at which [`classify`] says
    /// offline). Offline and never-seen servers stay unarmed until something about them changes
    /// (or the caller [`Self::recheck`]s them).
    pub(super) fn judge_due(&self, now_ms: i64, offline_after_ms: i64) -> Vec<Judged> {
        let due = self.deadlines.pop_due(now_ms);
        if due.is_empty() {
            return Vec::new();
        }
        let mut judged = Vec::with_capacity(due.len());
        let mut rearm = Vec::new();
        let mut agents = self.lock();
        for (at, server) in due {
            let Some(agent) = agents.get_mut(&server) else { continue };
            if agent.check_at != Some(at) {
                continue; // moved earlier since, and judged then
            }
            agent.check_at = None;
            let status = classify(agent, now_ms, offline_after_ms);
            agent.judged_offline = status == ConnectionStatus::Offline;
            if status == ConnectionStatus::Online
                && let Some(seen) = agent.last_seen_ms
            {
                let stale_at = seen.saturating_add(offline_after_ms).saturating_add(1);
                if agent.arm(stale_at) {
                    rearm.push((stale_at, server.clone()));
                }
            }
            judged.push(Judged { server, account: agent.account_id.clone(), status });
        }
        drop(agents);
        for (at, server) in rearm {
            self.deadlines.push(at, server);
        }
        judged
    }

    /// Judges `server` again at `at_ms` (or earlier, if a check is already queued before it).
    pub(super) fn recheck(&self, server: &ServerId, at_ms: i64) {
        let mut agents = self.lock();
        if let Some(agent) = agents.get_mut(server)
            && agent.arm(at_ms)
        {
            drop(agents);
            self.deadlines.push(at_ms, server.clone());
        }
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
