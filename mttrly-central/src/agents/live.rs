//! The connection table: which server has an open stream, through which sender, and what its
//! agent announced. One short-held lock over one map; an entry per known server, whether or not it
//! is connected, so status and last-seen survive a disconnect.
//!
//! Everything here is synchronous and never awaits under the lock. Closing a connection only
//! reports its id: failing the tasks that ran on it is the registry's job ([`super::registry`]),
//! which owns both this table and the pending tasks.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use mttrly_core::capability::{CapabilityId, CapabilitySet};
use mttrly_core::ids::{AccountId, ServerId};
use mttrly_core::tools::common::HostMetrics;
use mttrly_proto::agent::v1::CentralMessage;
use tokio::sync::mpsc;

use super::deadlines::Deadlines;

/// The sending half of an agent's stream. Messages are boxed: tokio's channel allocates its
/// slots 32 at a time, up front, and a `CentralMessage` is about 160 bytes, so every idle agent
/// would otherwise hold a 5 KB block for the few tasks it ever gets.
pub type AgentSender = mpsc::Sender<Box<CentralMessage>>;

/// What an agent said about itself in its hello: the capabilities central may ask it for (read
/// from the wire at the boundary, unknown names from a newer agent left out) and its version,
/// which a refusal names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announced {
    /// The agent's version.
    pub agent_version: String,
    /// The capabilities it offers.
    pub capabilities: CapabilitySet,
}

/// One open stream.
pub(super) struct Connection {
    pub(super) id: u64,
    pub(super) sender: AgentSender,
    pub(super) announced: Announced,
}

/// One known server. Kept small: a fleet holds tens of thousands of these.
pub(super) struct LiveAgent {
    pub(super) account_id: AccountId,
    pub(super) connection: Option<Connection>,
    /// The id of the latest stream, open or closed (0: none yet): which hello the server's row
    /// must hold to be shown with this entry ([`super::liveness::LiveStatus::newer_than`]).
    pub(super) last_stream: u64,
    pub(super) last_seen_ms: Option<i64>,
    /// Boxed: most of an entry's size, and absent until the first heartbeat.
    pub(super) metrics: Option<Box<HostMetrics>>,
    /// A heartbeat not yet written to the database.
    pub(super) dirty: bool,
    /// The last judgement found it offline: its next heartbeat must be judged at once.
    pub(super) judged_offline: bool,
    /// When it is next judged (its live entry in [`Deadlines`]); `None` while nothing about it
    /// can change by time alone (offline, never seen).
    pub(super) check_at: Option<i64>,
}

impl LiveAgent {
    fn new(account_id: AccountId) -> Self {
        Self {
            account_id,
            connection: None,
            last_stream: 0,
            last_seen_ms: None,
            metrics: None,
            dirty: false,
            judged_offline: false,
            check_at: None,
        }
    }

    /// Moves the next judgement to `at_ms` if that is earlier than the one already queued;
    /// returns whether an entry must be pushed on [`Deadlines`] (with the table's lock held or
    /// after it is released: a check is found by its instant, not by when it was pushed).
    pub(super) fn arm(&mut self, at_ms: i64) -> bool {
        if self.check_at.is_some_and(|queued| queued <= at_ms) {
            return false;
        }
        self.check_at = Some(at_ms);
        true
    }
}

/// A check "at the next sweep": earlier than any instant, so the next sweep takes it whatever its
/// clock says.
pub(super) const NEXT_SWEEP: i64 = i64::MIN;

/// Why a task cannot be sent to a server's agent.
pub(super) enum Unreachable {
    /// No stream is open.
    Offline,
    /// The agent's hello did not announce the capability; its version, for the refusal.
    NotAnnounced(String),
}

/// The table of known servers, and when each is next judged.
#[derive(Default)]
pub(super) struct LiveTable {
    agents: Mutex<HashMap<ServerId, LiveAgent>>,
    pub(super) deadlines: Deadlines,
}

impl LiveTable {
    /// The map, locked. Held for a lookup or an update, never across an await.
    pub(super) fn lock(&self) -> MutexGuard<'_, HashMap<ServerId, LiveAgent>> {
        self.agents.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Seeds a server's last-seen time and metrics from the database (at start), unless it is
    /// already known. It is judged at the first sweep (which the grace period tempers).
    pub(super) fn seed(
        &self,
        server: ServerId,
        account_id: AccountId,
        last_seen_ms: Option<i64>,
        metrics: Option<HostMetrics>,
    ) {
        let mut agents = self.lock();
        if agents.contains_key(&server) {
            return;
        }
        let mut agent = LiveAgent { last_seen_ms, metrics: metrics.map(Box::new), ..LiveAgent::new(account_id) };
        agent.arm(NEXT_SWEEP);
        agents.insert(server.clone(), agent);
        drop(agents);
        self.deadlines.push(NEXT_SWEEP, server);
    }

    /// Installs connection `id` for `server`, seen now. Returns the id of the connection it
    /// replaced, whose tasks must fail.
    pub(super) fn connect(
        &self,
        server: &ServerId,
        account_id: &AccountId,
        id: u64,
        sender: AgentSender,
        announced: Announced,
        now_ms: i64,
    ) -> Option<u64> {
        let mut agents = self.lock();
        let entry = agents.entry(server.clone()).or_insert_with(|| LiveAgent::new(account_id.clone()));
        let replaced = entry.connection.replace(Connection { id, sender, announced });
        entry.last_stream = id;
        entry.last_seen_ms = Some(now_ms);
        entry.dirty = true;
        let push = entry.arm(NEXT_SWEEP);
        drop(agents);
        if push {
            self.deadlines.push(NEXT_SWEEP, server.clone());
        }
        replaced.map(|c| c.id)
    }

    /// Forgets connection `id` of `server` if it is still the current one (a stale id, already
    /// replaced, changes nothing). Without a stream the server is offline: judged at the next
    /// sweep.
    pub(super) fn disconnect(&self, server: &ServerId, id: u64) {
        let mut agents = self.lock();
        if let Some(agent) = agents.get_mut(server)
            && agent.connection.as_ref().is_some_and(|c| c.id == id)
        {
            agent.connection = None;
            if agent.arm(NEXT_SWEEP) {
                drop(agents);
                self.deadlines.push(NEXT_SWEEP, server.clone());
            }
        }
    }

    /// Closes the server's stream, returning the closed connection's id (judged at the next
    /// sweep, like a disconnect).
    pub(super) fn close(&self, server: &ServerId) -> Option<u64> {
        let mut agents = self.lock();
        let agent = agents.get_mut(server)?;
        let closed = agent.connection.take()?;
        if agent.arm(NEXT_SWEEP) {
            drop(agents);
            self.deadlines.push(NEXT_SWEEP, server.clone());
        }
        Some(closed.id)
    }

    /// Closes every stream, returning their ids (each judged at the next sweep).
    pub(super) fn close_all(&self) -> Vec<u64> {
        let mut agents = self.lock();
        let mut closed = Vec::new();
        for (server, agent) in agents.iter_mut() {
            if let Some(c) = agent.connection.take() {
                closed.push(c.id);
                if agent.arm(NEXT_SWEEP) {
                    self.deadlines.push(NEXT_SWEEP, server.clone());
                }
            }
        }
        closed
    }

    /// Forgets a server entirely.
    pub(super) fn remove(&self, server: &ServerId) {
        self.lock().remove(server);
    }

    /// How many servers have an open stream.
    pub(super) fn connected(&self) -> usize {
        self.lock().values().filter(|a| a.connection.is_some()).count()
    }

    /// The open stream a task for `capability` goes down: its connection id and sender.
    pub(super) fn route(&self, server: &ServerId, capability: CapabilityId) -> Result<(u64, AgentSender), Unreachable> {
        let agents = self.lock();
        let conn = agents.get(server).and_then(|a| a.connection.as_ref()).ok_or(Unreachable::Offline)?;
        if !conn.announced.capabilities.contains(capability) {
            return Err(Unreachable::NotAnnounced(conn.announced.agent_version.clone()));
        }
        Ok((conn.id, conn.sender.clone()))
    }
}
