//! Live agents: who is connected, their latest heartbeat, and the request/response layer that
//! sends tasks down an agent's stream and waits for the answer.
//!
//! State lives in memory (one short-held lock) and is flushed to SQLite in batches by the
//! heartbeat flusher, so ten thousand agents heartbeating every ten seconds cost one small
//! transaction every couple of seconds, not a thousand writes a second.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use mttrly_core::ids::{AccountId, ActionId, ServerId, TaskId};
use mttrly_core::tools::common::{ConnectionStatus, HostMetrics};
use mttrly_core::{ErrorCode, MttrlyError};
use mttrly_proto::agent::v1::{
    self as wire, CancelTask, CentralMessage, OutputStream, TaskRequest, TaskStatus, central_message,
};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

/// The sending half of an agent's stream.
pub type AgentSender = mpsc::Sender<Result<CentralMessage, tonic::Status>>;

/// What an agent answered to a task.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskReply {
    /// How it ended.
    pub status: TaskStatus,
    /// Process exit code, when a process ran to completion.
    pub exit_code: Option<i32>,
    /// The structured result.
    pub result: Value,
    /// The agent's error, when it failed.
    pub error: Option<MttrlyError>,
    /// Streamed output, in order (already redacted by the agent).
    pub output: Vec<(OutputStream, Vec<u8>)>,
    /// Whether output was cut at a cap.
    pub truncated: bool,
    /// When it started on the agent (ms).
    pub started_at_ms: i64,
    /// When it ended (ms).
    pub finished_at_ms: i64,
}

struct Connection {
    id: u64,
    sender: AgentSender,
}

struct LiveAgent {
    account_id: AccountId,
    connection: Option<Connection>,
    last_seen_ms: Option<i64>,
    metrics: Option<HostMetrics>,
    dirty: bool,
}

struct PendingTask {
    server: ServerId,
    connection: u64,
    reply: oneshot::Sender<TaskReply>,
    output: Vec<(OutputStream, Vec<u8>)>,
}

/// The registry of live agents.
pub struct AgentRegistry {
    agents: Mutex<HashMap<ServerId, LiveAgent>>,
    tasks: Mutex<HashMap<String, PendingTask>>,
    next_connection: AtomicU64,
    offline_after_ms: i64,
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
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl AgentRegistry {
    /// A registry that calls a server offline after `offline_after` without a heartbeat.
    pub fn new(offline_after: Duration) -> Self {
        Self {
            agents: Mutex::new(HashMap::new()),
            tasks: Mutex::new(HashMap::new()),
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
        lock(&self.agents).entry(server).or_insert(LiveAgent {
            account_id,
            connection: None,
            last_seen_ms,
            metrics,
            dirty: false,
        });
    }

    /// Registers a new stream for `server`, replacing (and so closing) any older one. Returns the
    /// connection id that later calls must present.
    pub fn connect(&self, server: &ServerId, account_id: &AccountId, sender: AgentSender, now_ms: i64) -> u64 {
        let id = self.next_connection.fetch_add(1, Ordering::Relaxed);
        let mut agents = lock(&self.agents);
        let entry = agents.entry(server.clone()).or_insert_with(|| LiveAgent {
            account_id: account_id.clone(),
            connection: None,
            last_seen_ms: None,
            metrics: None,
            dirty: false,
        });
        let replaced = entry.connection.replace(Connection { id, sender });
        entry.last_seen_ms = Some(now_ms);
        entry.dirty = true;
        drop(agents);
        if let Some(old) = replaced {
            self.fail_tasks_of(old.id, "the agent reconnected on a new stream while the task was running");
        }
        id
    }

    /// Forgets a stream that ended. A stale connection id (already replaced) changes nothing.
    pub fn disconnect(&self, server: &ServerId, connection: u64) {
        let mut agents = lock(&self.agents);
        if let Some(agent) = agents.get_mut(server)
            && agent.connection.as_ref().is_some_and(|c| c.id == connection)
        {
            agent.connection = None;
        }
        drop(agents);
        self.fail_tasks_of(connection, "the agent disconnected while the task was running");
    }

    /// Closes the server's stream now (credentials rotated, server decommissioned).
    pub fn kick(&self, server: &ServerId) {
        let removed = lock(&self.agents).get_mut(server).and_then(|a| a.connection.take());
        if let Some(connection) = removed {
            self.fail_tasks_of(connection.id, "the agent was disconnected while the task was running");
        }
    }

    /// Closes every stream (shutdown). Agents reconnect, with backoff, to the next central.
    pub fn kick_all(&self) {
        let closed: Vec<u64> =
            lock(&self.agents).values_mut().filter_map(|a| a.connection.take()).map(|c| c.id).collect();
        for id in closed {
            self.fail_tasks_of(id, "central is shutting down");
        }
    }

    /// Forgets a server entirely (decommissioned).
    pub fn remove(&self, server: &ServerId) {
        self.kick(server);
        lock(&self.agents).remove(server);
    }

    /// Records a heartbeat.
    pub fn heartbeat(&self, server: &ServerId, connection: u64, metrics: HostMetrics, now_ms: i64) {
        let mut agents = lock(&self.agents);
        if let Some(agent) = agents.get_mut(server)
            && agent.connection.as_ref().is_some_and(|c| c.id == connection)
        {
            agent.last_seen_ms = Some(now_ms);
            agent.metrics = Some(metrics);
            agent.dirty = true;
        }
    }

    /// The server's live status.
    pub fn status(&self, server: &ServerId, now_ms: i64) -> LiveStatus {
        let agents = lock(&self.agents);
        match agents.get(server) {
            None => LiveStatus { status: ConnectionStatus::Pending, last_seen_ms: None, metrics: None },
            Some(agent) => LiveStatus {
                status: self.classify(agent, now_ms),
                last_seen_ms: agent.last_seen_ms,
                metrics: agent.metrics.clone(),
            },
        }
    }

    fn classify(&self, agent: &LiveAgent, now_ms: i64) -> ConnectionStatus {
        match (&agent.connection, agent.last_seen_ms) {
            (_, None) => ConnectionStatus::Pending,
            (Some(_), Some(seen)) if now_ms - seen <= self.offline_after_ms => ConnectionStatus::Online,
            _ => ConnectionStatus::Offline,
        }
    }

    /// Every known server with its account and status: for the offline sweep.
    pub fn snapshot(&self, now_ms: i64) -> Vec<(ServerId, AccountId, ConnectionStatus, Option<i64>)> {
        lock(&self.agents)
            .iter()
            .map(|(id, a)| (id.clone(), a.account_id.clone(), self.classify(a, now_ms), a.last_seen_ms))
            .collect()
    }

    /// How many servers have an open stream.
    pub fn connected(&self) -> usize {
        lock(&self.agents).values().filter(|a| a.connection.is_some()).count()
    }

    /// Takes the heartbeats not yet written to the database.
    pub fn take_dirty(&self) -> Vec<(ServerId, i64, Option<HostMetrics>)> {
        let mut agents = lock(&self.agents);
        let mut out = Vec::new();
        for (id, agent) in agents.iter_mut().filter(|(_, a)| a.dirty) {
            agent.dirty = false;
            if let Some(seen) = agent.last_seen_ms {
                out.push((id.clone(), seen, agent.metrics.clone()));
            }
        }
        out
    }

    /// Sends a task to the server's agent and waits for its result, at most until `deadline`.
    ///
    /// Fails fast with `SERVER_OFFLINE` when no stream is open, with `SERVER_OFFLINE` naming the
    /// task when the agent disconnects mid-way, and with `TIMEOUT` at the deadline (the agent is
    /// told to cancel). Dropping the returned future cancels the task on the agent too.
    pub async fn request(
        &self,
        server: &ServerId,
        capability: &str,
        params: &Value,
        deadline: Duration,
        action: Option<(&ActionId, &str)>,
    ) -> Result<TaskReply, MttrlyError> {
        self.request_raw(server, capability, serde_json::to_vec(params).unwrap_or_default(), deadline, action).await
    }

    /// Like [`Self::request`], with the parameters as exact JSON bytes: for actions, the bytes
    /// whose SHA-256 the human approved and the agent re-checks.
    pub async fn request_raw(
        &self,
        server: &ServerId,
        capability: &str,
        params_json: Vec<u8>,
        deadline: Duration,
        action: Option<(&ActionId, &str)>,
    ) -> Result<TaskReply, MttrlyError> {
        self.request_with_payload(server, capability, params_json, Vec::new(), deadline, action, false).await
    }

    /// Like [`Self::request_raw`], with bytes the approved content names by hash, and whether a
    /// human approved the action (the agent runs an unapproved command only if it is read-only).
    #[allow(clippy::too_many_arguments)]
    pub async fn request_with_payload(
        &self,
        server: &ServerId,
        capability: &str,
        params_json: Vec<u8>,
        payload: Vec<u8>,
        deadline: Duration,
        action: Option<(&ActionId, &str)>,
        human_approved: bool,
    ) -> Result<TaskReply, MttrlyError> {
        let offline = || {
            MttrlyError::new(ErrorCode::ServerOffline, "the server's agent is not connected")
                .with_detail("server_id", server.as_str())
        };
        let (connection, sender) = {
            let agents = lock(&self.agents);
            let agent = agents.get(server).ok_or_else(offline)?;
            let conn = agent.connection.as_ref().ok_or_else(offline)?;
            (conn.id, conn.sender.clone())
        };
        let task_id = TaskId::generate();
        let (reply_tx, reply_rx) = oneshot::channel();
        lock(&self.tasks).insert(
            task_id.to_string(),
            PendingTask { server: server.clone(), connection, reply: reply_tx, output: Vec::new() },
        );
        let guard = PendingGuard { registry: self, task_id: task_id.to_string(), sender: sender.clone(), armed: true };

        let deadline_ms =
            jiff::Timestamp::now().as_millisecond() + i64::try_from(deadline.as_millis()).unwrap_or(i64::MAX / 2);
        let request = CentralMessage {
            body: Some(central_message::Body::TaskRequest(TaskRequest {
                task_id: task_id.to_string(),
                action_id: action.map(|(id, _)| id.to_string()).unwrap_or_default(),
                deadline_unix_ms: deadline_ms,
                capability: capability.to_owned(),
                params_json,
                content_sha256: action.map(|(_, hash)| hash.to_owned()).unwrap_or_default(),
                payload,
                human_approved: human_approved && action.is_some(),
            })),
        };
        if sender.send(Ok(request)).await.is_err() {
            return Err(offline());
        }
        match tokio::time::timeout(deadline, reply_rx).await {
            Ok(Ok(reply)) => {
                guard.disarm();
                Ok(reply)
            }
            Ok(Err(_)) => {
                guard.disarm();
                Err(MttrlyError::new(
                    ErrorCode::ServerOffline,
                    "the agent disconnected while the task was running; its outcome is unknown",
                )
                .with_detail("server_id", server.as_str())
                .with_detail("task_id", task_id.as_str()))
            }
            Err(_) => Err(MttrlyError::new(ErrorCode::Timeout, "the agent did not answer before the deadline")
                .with_detail("server_id", server.as_str())
                .with_detail("task_id", task_id.as_str())
                .with_detail("deadline_ms", u64::try_from(deadline.as_millis()).unwrap_or(u64::MAX))),
        }
    }

    /// Routes a message about a task from the agent on `connection`.
    pub fn task_message(&self, server: &ServerId, connection: u64, message: wire::agent_message::Body) {
        use wire::agent_message::Body;
        let mut tasks = lock(&self.tasks);
        match message {
            Body::TaskOutput(out) => {
                if let Some(task) = tasks.get_mut(&out.task_id)
                    && task.connection == connection
                    && &task.server == server
                {
                    let stream = OutputStream::try_from(out.stream).unwrap_or(OutputStream::Unspecified);
                    task.output.push((stream, out.data));
                }
            }
            Body::TaskResult(result) => {
                let owned =
                    tasks.get(&result.task_id).is_some_and(|t| t.connection == connection && &t.server == server);
                if owned && let Some(task) = tasks.remove(&result.task_id) {
                    let error = result.error.map(|e| {
                        let code = e.code.parse().unwrap_or(ErrorCode::UnknownError);
                        let mut err = MttrlyError::new(code, e.message);
                        if let Ok(Value::Object(details)) = serde_json::from_slice::<Value>(&e.details_json) {
                            for (k, v) in details {
                                err = err.with_detail(&k, v);
                            }
                        }
                        err
                    });
                    let reply = TaskReply {
                        status: TaskStatus::try_from(result.status).unwrap_or(TaskStatus::Unspecified),
                        exit_code: result.exit_code,
                        result: serde_json::from_slice(&result.result_json).unwrap_or(Value::Null),
                        error,
                        output: task.output,
                        truncated: result.truncated,
                        started_at_ms: result.started_at_unix_ms,
                        finished_at_ms: result.finished_at_unix_ms,
                    };
                    let _ = task.reply.send(reply);
                }
            }
            Body::TaskAck(_) | Body::Hello(_) | Body::Heartbeat(_) => {}
        }
    }

    fn fail_tasks_of(&self, connection: u64, reason: &str) {
        let mut tasks = lock(&self.tasks);
        let before = tasks.len();
        // Dropping a pending task's sender wakes its waiter with the "disconnected" error.
        tasks.retain(|_, t| t.connection != connection);
        let failed = before - tasks.len();
        if failed > 0 {
            tracing::warn!(connection, failed, reason, "tasks failed");
        }
    }
}

/// Removes a pending task and tells the agent to cancel it, unless the task completed.
struct PendingGuard<'a> {
    registry: &'a AgentRegistry,
    task_id: String,
    sender: AgentSender,
    armed: bool,
}

impl PendingGuard<'_> {
    fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        lock(&self.registry.tasks).remove(&self.task_id);
        let cancel = CentralMessage {
            body: Some(central_message::Body::CancelTask(CancelTask {
                task_id: self.task_id.clone(),
                reason: "central stopped waiting (deadline or caller gone)".to_owned(),
            })),
        };
        // Best effort: a full or closed stream means the agent is gone or will time out itself.
        let _ = self.sender.try_send(Ok(cancel));
    }
}
