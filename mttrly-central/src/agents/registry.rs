//! The registry of live agents: the one handle the rest of central holds. It owns the connection
//! table ([`super::live`], with liveness in [`super::liveness`]) and the pending tasks
//! ([`super::tasks`]), and keeps the rule that ties them: a connection that closes (replaced,
//! kicked, ended, shut down) fails every task still waiting on it at once. Sending lives in
//! [`super::dispatch`], the typed call in [`super::ask`].
//!
//! State lives in memory and is flushed to SQLite in batches by the heartbeat flusher.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use mttrly_core::ids::{AccountId, ServerId};
use mttrly_core::tools::common::HostMetrics;
use mttrly_proto::agent::v1 as wire;

use super::live::LiveTable;
pub use super::live::{AgentSender, Announced};
pub use super::liveness::{HelloMark, Judged, LiveStatus};
use super::tasks::PendingTasks;
pub use super::tasks::{ActionGrant, TaskReply, TaskSpec};

/// The registry of live agents.
pub struct AgentRegistry {
    pub(super) live: LiveTable,
    pub(super) tasks: PendingTasks,
    next_connection: AtomicU64,
    offline_after_ms: i64,
}

impl AgentRegistry {
    /// A registry that calls a server offline after `offline_after` without a heartbeat.
    pub fn new(offline_after: Duration) -> Self {
        Self {
            live: LiveTable::default(),
            tasks: PendingTasks::default(),
            next_connection: AtomicU64::new(1),
            offline_after_ms: i64::try_from(offline_after.as_millis()).unwrap_or(i64::MAX),
        }
    }

    /// Seeds last-seen times and metrics from the database at start, so status survives a restart.
    pub fn seed(
        &self,
        server: ServerId,
        account_id: AccountId,
        last_seen_ms: Option<i64>,
        metrics: Option<HostMetrics>,
    ) {
        self.live.seed(server, account_id, last_seen_ms, metrics);
    }

    /// Registers a new stream for `server`, replacing (and so closing) any older one. Returns the
    /// connection id that later calls must present.
    pub fn connect(
        &self,
        server: &ServerId,
        account_id: &AccountId,
        sender: AgentSender,
        announced: Announced,
        now_ms: i64,
    ) -> u64 {
        // Release: whoever reads the counter past `id` ([`Self::mark`]) also sees the hello that
        // the caller stored before registering this stream.
        let id = self.next_connection.fetch_add(1, Ordering::AcqRel);
        if let Some(old) = self.live.connect(server, account_id, id, sender, announced, now_ms) {
            self.tasks.fail_connection(old, "the agent reconnected on a new stream while the task was running");
        }
        id
    }

    /// Forgets a stream that ended. A stale connection id (already replaced) changes nothing.
    pub fn disconnect(&self, server: &ServerId, connection: u64) {
        self.live.disconnect(server, connection);
        self.tasks.fail_connection(connection, "the agent disconnected while the task was running");
    }

    /// Closes the server's stream now (credentials rotated, server decommissioned).
    pub fn kick(&self, server: &ServerId) {
        if let Some(closed) = self.live.close(server) {
            self.tasks.fail_connection(closed, "the agent was disconnected while the task was running");
        }
    }

    /// Closes every stream (shutdown). Agents reconnect, with backoff, to the next central.
    pub fn kick_all(&self) {
        for closed in self.live.close_all() {
            self.tasks.fail_connection(closed, "central is shutting down");
        }
    }

    /// Forgets a server entirely (decommissioned).
    pub fn remove(&self, server: &ServerId) {
        self.kick(server);
        self.live.remove(server);
    }

    /// Records a heartbeat.
    pub fn heartbeat(&self, server: &ServerId, connection: u64, metrics: HostMetrics, now_ms: i64) {
        self.live.heartbeat(server, connection, metrics, now_ms);
    }

    /// What running actions printed so far (tasks that carry an action feed it).
    pub fn live_output(&self) -> &super::output::LiveOutput {
        &self.tasks.output
    }

    /// A mark to take before reading server rows that will be shown with their live status. The
    /// agent service stores an agent's hello before it registers the stream, so a stream opened
    /// before the mark has its hello in any row read after it; a stream opened after it may be
    /// newer than such a row ([`LiveStatus::newer_than`]), and that row must be read again or the
    /// view would show a connected agent with no host, or with the version it had before.
    pub fn mark(&self) -> HelloMark {
        HelloMark(self.next_connection.load(Ordering::Acquire))
    }

    /// The server's live status.
    pub fn status(&self, server: &ServerId, now_ms: i64) -> LiveStatus {
        self.live.status(server, now_ms, self.offline_after_ms)
    }

    /// Online, offline or never connected for each of `servers`, in order, under one lock and
    /// without copying metrics: the dashboard classifies a whole account (its totals, its state
    /// filter) on every servers page.
    pub fn connection_states<'s>(
        &self,
        servers: impl IntoIterator<Item = &'s ServerId>,
        now_ms: i64,
    ) -> Vec<mttrly_core::tools::common::ConnectionStatus> {
        let agents = self.live.lock();
        servers
            .into_iter()
            .map(|server| {
                agents.get(server).map_or(mttrly_core::tools::common::ConnectionStatus::Pending, |agent| {
                    super::liveness::classify(agent, now_ms, self.offline_after_ms)
                })
            })
            .collect()
    }

    /// The servers whose status may have changed by `now_ms`, judged: for the offline sweep.
    /// Each known server is judged at the first sweep, then again only when its stream opens or
    /// closes, when its heartbeats grow too old, when a heartbeat follows an offline judgement,
    /// or when asked to ([`Self::recheck`]).
    pub fn judge_due(&self, now_ms: i64) -> Vec<Judged> {
        self.live.judge_due(now_ms, self.offline_after_ms)
    }

    /// Judges `server` again at `at_ms` (sooner if already due sooner): for an alert rule's sustain window or the
    /// end of the start-up grace period, which only the caller knows about.
    pub fn recheck(&self, server: &ServerId, at_ms: i64) {
        self.live.recheck(server, at_ms);
    }

    /// Checks queued for the offline sweep, stale ones included (for tests: they must not pile
    /// up with heartbeats).
    #[cfg(test)]
    pub(crate) fn queued_checks(&self) -> usize {
        self.live.deadlines.len()
    }

    /// How many servers have an open stream.
    pub fn connected(&self) -> usize {
        self.live.connected()
    }

    /// Takes the heartbeats not yet written to the database.
    pub fn take_dirty(&self) -> Vec<(ServerId, i64, Option<HostMetrics>)> {
        self.live.take_dirty()
    }

    /// Routes a message about a task from the agent on `connection`.
    pub fn task_message(&self, server: &ServerId, connection: u64, message: wire::agent_message::Body) {
        self.tasks.route(server, connection, message);
    }
}

#[cfg(test)]
mod tests {
    use mttrly_core::capability::{CapabilityId, CapabilitySet, NoParams};
    use mttrly_core::tools::common::ConnectionStatus;
    use mttrly_core::{ErrorCode, MttrlyError};
    use mttrly_proto::agent::v1::central_message;
    use tokio::sync::mpsc;

    use super::*;

    fn announced() -> Announced {
        Announced { agent_version: "t".to_owned(), capabilities: CapabilitySet::all() }
    }

    fn metrics() -> HostMetrics {
        mttrly_proto::convert::metrics_from_wire(&wire::HostMetrics::default(), jiff::Timestamp::UNIX_EPOCH)
    }

    /// The rule the registry keeps across its two tables: the connection a task went down is the
    /// only one that may answer it, and replacing that connection fails the task at once; the
    /// replaced connection's heartbeats and disconnect change nothing any more.
    #[tokio::test]
    async fn a_replaced_connection_fails_its_tasks_and_its_late_messages_change_nothing() {
        let registry = AgentRegistry::new(Duration::from_secs(30));
        let (server, account) = (ServerId::generate(), AccountId::generate());
        let (tx1, mut rx1) = mpsc::channel(4);
        let first = registry.connect(&server, &account, tx1, announced(), 1_000);
        assert_eq!(registry.status(&server, 1_000).status, ConnectionStatus::Online);

        let spec = TaskSpec::request(CapabilityId::HostSample, &NoParams, Duration::from_secs(30));
        let replace = async {
            let sent = rx1.recv().await.expect("the task went down the first stream");
            assert!(matches!(sent.body, Some(central_message::Body::TaskRequest(_))), "{sent:?}");
            let (tx2, rx2) = mpsc::channel(4);
            (registry.connect(&server, &account, tx2, announced(), 2_000), rx2)
        };
        let started = std::time::Instant::now();
        let (result, (second, _rx2)) = tokio::join!(registry.send(&server, spec), replace);
        let err: MttrlyError = result.expect_err("the replaced stream's task fails");
        assert_eq!(err.code(), ErrorCode::ServerOffline, "{err}");
        assert!(started.elapsed() < Duration::from_secs(5), "failed at once, not at the deadline");
        assert_ne!(first, second);

        registry.heartbeat(&server, first, metrics(), 3_000);
        assert_eq!(registry.status(&server, 3_000).last_seen_ms, Some(2_000), "a stale heartbeat is ignored");
        registry.heartbeat(&server, second, metrics(), 4_000);
        let live = registry.status(&server, 4_000);
        assert_eq!((live.last_seen_ms, live.metrics.is_some()), (Some(4_000), true));
        assert_eq!(registry.take_dirty().len(), 1);
        assert!(registry.take_dirty().is_empty(), "taken once");

        registry.disconnect(&server, first);
        assert_eq!(registry.connected(), 1, "a stale disconnect is ignored");
        registry.disconnect(&server, second);
        assert_eq!(registry.connected(), 0);
        assert_eq!(registry.status(&server, 4_000).status, ConnectionStatus::Offline);
    }
}
