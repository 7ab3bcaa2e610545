//! Tasks and their pending answers: what central sends down an agent's stream ([`TaskSpec`]),
//! what comes back ([`TaskReply`]), and the table of tasks waiting for their answer.
//!
//! A pending task remembers the connection it went down: only that connection may answer it, and
//! when that connection ends every task on it fails at once (the waiter's reply sender is
//! dropped) instead of waiting for its deadline.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use mttrly_core::capability::CapabilityId;
use mttrly_core::ids::{ActionId, ServerId};
use mttrly_core::{ErrorBody, ErrorCode, MttrlyError};
use mttrly_proto::agent::v1::{self as wire, CancelTask, CentralMessage, OutputStream, TaskStatus, central_message};
use tokio::sync::oneshot;

use super::live::AgentSender;
use super::output::LiveOutput;

/// What an agent answered to a task.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskReply {
    /// How it ended.
    pub status: TaskStatus,
    /// Process exit code, when a process ran to completion.
    pub exit_code: Option<i32>,
    /// The answer's bytes as the agent sent them (empty when it answered nothing); typed by the
    /// capability's row ([`crate::agents::ask`], `CapabilityId::decode_answer`).
    pub answer: Vec<u8>,
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

/// One task for an agent: which capability, its parameters as exact JSON bytes, the bytes the
/// approved content names by hash, how long to wait, and for actions the approval it runs under.
#[derive(Debug, Clone)]
pub struct TaskSpec {
    /// The capability.
    pub capability: CapabilityId,
    /// The parameters' JSON bytes (for actions, the bytes whose SHA-256 the human approved).
    pub params_json: Vec<u8>,
    /// Bytes named by the content's hash (a file write's new content), else empty.
    pub payload: Vec<u8>,
    /// How long central waits.
    pub deadline: Duration,
    /// Set for actions.
    pub action: Option<ActionGrant>,
}

/// The approval an action task runs under; the agent re-checks the hash and runs an id once.
#[derive(Debug, Clone)]
pub struct ActionGrant {
    /// The action.
    pub id: ActionId,
    /// SHA-256 of the approved content (hex), which must equal that of `params_json`.
    pub content_sha256: String,
    /// Whether a human approved it (the agent runs an unapproved command only if read-only).
    pub human_approved: bool,
}

impl TaskSpec {
    /// A plain request: `params` encoded, no payload, not an action.
    pub fn request<P: serde::Serialize>(capability: CapabilityId, params: &P, deadline: Duration) -> Self {
        Self {
            capability,
            params_json: serde_json::to_vec(params).unwrap_or_default(),
            payload: Vec::new(),
            deadline,
            action: None,
        }
    }
}

/// A task sent and not yet answered.
struct PendingTask {
    server: ServerId,
    connection: u64,
    reply: oneshot::Sender<TaskReply>,
    output: Vec<(OutputStream, Vec<u8>)>,
    /// The action the task runs, whose output pages may follow live ([`LiveOutput`]).
    action: Option<ActionId>,
}

/// The tasks waiting for an answer, by task id.
#[derive(Default)]
pub(super) struct PendingTasks {
    tasks: Mutex<HashMap<String, PendingTask>>,
    /// What running actions printed so far.
    pub(super) output: LiveOutput,
}

impl PendingTasks {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, PendingTask>> {
        self.tasks.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a task about to go down `connection` of `server`; its answer arrives on the
    /// returned receiver (closed when the connection ends first).
    pub(super) fn insert(
        &self,
        task_id: &str,
        server: &ServerId,
        connection: u64,
        action: Option<ActionId>,
    ) -> oneshot::Receiver<TaskReply> {
        let (reply, rx) = oneshot::channel();
        self.lock().insert(
            task_id.to_owned(),
            PendingTask { server: server.clone(), connection, reply, output: Vec::new(), action },
        );
        rx
    }

    /// Routes a message about a task from the agent on `connection` of `server`; a message about
    /// a task another connection or server owns is ignored.
    pub(super) fn route(&self, server: &ServerId, connection: u64, message: wire::agent_message::Body) {
        use wire::agent_message::Body;
        let mut tasks = self.lock();
        match message {
            Body::TaskOutput(out) => {
                if let Some(task) = tasks.get_mut(&out.task_id)
                    && task.connection == connection
                    && &task.server == server
                {
                    let stream = OutputStream::try_from(out.stream).unwrap_or(OutputStream::Unspecified);
                    if let Some(action) = &task.action {
                        self.output.append(action, &out.data);
                    }
                    task.output.push((stream, out.data));
                }
            }
            Body::TaskResult(result) => {
                let owned =
                    tasks.get(&result.task_id).is_some_and(|t| t.connection == connection && &t.server == server);
                if owned && let Some(task) = tasks.remove(&result.task_id) {
                    drop(tasks);
                    let reply = reply_of(result, task.output);
                    let _ = task.reply.send(reply);
                }
            }
            Body::TaskAck(_)
            | Body::Hello(_)
            | Body::Heartbeat(_)
            | Body::DeployDetected(_)
            | Body::ProactiveEvent(_) => {}
        }
    }

    /// Fails every task that went down `connection`: dropping a pending task's reply sender wakes
    /// its waiter with the "disconnected" error.
    pub(super) fn fail_connection(&self, connection: u64, reason: &str) {
        let mut tasks = self.lock();
        let before = tasks.len();
        tasks.retain(|_, t| t.connection != connection);
        let failed = before - tasks.len();
        drop(tasks);
        if failed > 0 {
            tracing::warn!(connection, failed, reason, "tasks failed");
        }
    }

    /// Forgets a task nobody waits for any more.
    fn forget(&self, task_id: &str) {
        self.lock().remove(task_id);
    }
}

/// The agent's result as central's [`TaskReply`], with the output streamed before it.
fn reply_of(result: wire::TaskResult, output: Vec<(OutputStream, Vec<u8>)>) -> TaskReply {
    let error = result.error.map(|e| {
        // Details that are not a JSON object are dropped (an empty object), as before.
        let details = serde_json::from_slice::<serde_json::Value>(&e.details_json)
            .ok()
            .filter(serde_json::Value::is_object)
            .unwrap_or(serde_json::Value::Null);
        let code = e.code.parse().unwrap_or(ErrorCode::UnknownError);
        MttrlyError::from_body(ErrorBody {
            code,
            message: e.message,
            suggested_action: code.suggested_action().to_owned(),
            details,
        })
    });
    TaskReply {
        status: TaskStatus::try_from(result.status).unwrap_or(TaskStatus::Unspecified),
        exit_code: result.exit_code,
        answer: result.result_json,
        error,
        output,
        truncated: result.truncated,
        started_at_ms: result.started_at_unix_ms,
        finished_at_ms: result.finished_at_unix_ms,
    }
}

/// Removes a pending task and tells the agent to cancel it, unless the task completed: dropped
/// when the waiter stops waiting (deadline, or its own caller gone).
pub(super) struct PendingGuard<'a> {
    tasks: &'a PendingTasks,
    task_id: String,
    sender: AgentSender,
    armed: bool,
}

impl<'a> PendingGuard<'a> {
    /// Guards `task_id`, sent down `sender`.
    pub(super) fn new(tasks: &'a PendingTasks, task_id: String, sender: AgentSender) -> Self {
        Self { tasks, task_id, sender, armed: true }
    }

    /// The task ended (answered, or its connection closed): nothing to cancel.
    pub(super) fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        self.tasks.forget(&self.task_id);
        let cancel = CentralMessage {
            body: Some(central_message::Body::CancelTask(CancelTask {
                task_id: self.task_id.clone(),
                reason: "central stopped waiting (deadline or caller gone)".to_owned(),
            })),
        };
        // Best effort: a full or closed stream means the agent is gone or will time out itself.
        let _ = self.sender.try_send(Box::new(cancel));
    }
}
