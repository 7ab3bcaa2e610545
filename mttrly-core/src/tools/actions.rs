//! Pending actions, approvals, results and the audit log.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::common::Reason;
use crate::action::{ActionContent, ActionState, ActionType};
use crate::audit::{AuditActor, AuditKind, AuditOutcome};
use crate::bounded::bounded_int;
use crate::environment::Environment;
use crate::error::ErrorBody;
use crate::ids::{ActionId, ServerId};
use crate::principal::{Principal, Source};

/// What an execute tool returns: the action it created and where it stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ActionSubmission {
    /// The action's id, for `mttrly_get_action_result` and approval.
    pub action_id: ActionId,
    /// The server it targets.
    pub server_id: ServerId,
    /// What kind of change it is.
    pub action_type: ActionType,
    /// `pending_approval` when a human must decide; `succeeded`/`failed` when it ran at once.
    pub status: ActionState,
    /// Whether a human must approve before anything runs.
    pub requires_approval: bool,
    /// One line describing exactly what will run.
    pub description: String,
    /// When the pending action expires if nobody decides.
    pub expires_at: Option<jiff::Timestamp>,
    /// The result, when the action already ran (read-only commands and playbooks).
    pub result: Option<ExecutionResult>,
    /// What the user should do next, for example the exact `mttrly-cli actions approve` command.
    pub next_step: String,
}

/// What happened when an action ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ExecutionResult {
    /// The process exit code, when a process ran to completion.
    pub exit_code: Option<i32>,
    /// Combined output, redacted, capped by the plan's line limit.
    pub output: String,
    /// Whether the output was cut at the byte or line cap.
    pub truncated: bool,
    /// Wall-clock run time in milliseconds.
    pub duration_ms: u64,
    /// When it started on the agent.
    pub started_at: jiff::Timestamp,
    /// When it finished.
    pub finished_at: jiff::Timestamp,
    /// Why it failed, when it did.
    pub error: Option<ErrorBody>,
    /// Structured result for actions that have one (a playbook's steps, a reinstall command).
    pub data: Option<Value>,
}

/// Arguments of `mttrly_get_pending_actions`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetPendingActionsInput {
    /// Only actions for this server; the whole account when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_id: Option<ServerId>,
}

/// An action waiting for a human.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PendingAction {
    /// The action's id.
    pub action_id: ActionId,
    /// The server it targets.
    pub server_id: ServerId,
    /// The server's name.
    pub server_name: String,
    /// The server's environment (which decides the approval rule).
    pub environment: Environment,
    /// What kind of change it is.
    pub action_type: ActionType,
    /// One line describing exactly what will run.
    pub description: String,
    /// Exactly what will run; this is what an approval is bound to.
    pub content: ActionContent,
    /// Who asked for it.
    pub requested_by: Principal,
    /// When it was requested.
    pub created_at: jiff::Timestamp,
    /// When it expires if nobody decides.
    pub expires_at: jiff::Timestamp,
    /// How many distinct human approvals it needs.
    pub approvals_required: u32,
    /// How many it has.
    pub approvals_received: u32,
}

/// Actions awaiting approval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PendingActionList {
    /// The actions, oldest first (closest to expiry first).
    pub actions: Vec<PendingAction>,
}

/// Arguments of `mttrly_get_action_result`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetActionResultInput {
    /// The action, from the execute tool that created it or `mttrly_get_pending_actions`.
    pub action_id: ActionId,
}

/// A human's decision on an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Let it run.
    Approve,
    /// Refuse it.
    Reject,
}

/// One recorded human decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ApprovalRecord {
    /// Who decided (always a human).
    pub decided_by: Principal,
    /// Approve or reject.
    pub decision: Decision,
    /// The channel the decision came through.
    pub channel: Source,
    /// When.
    pub decided_at: jiff::Timestamp,
    /// The reason given, if any.
    pub reason: Option<String>,
    /// The approving human was added to the account, or sent an invite link (which sets their
    /// password and second factor), by the requester's own human before deciding: possibly an
    /// admin's second identity approving for them. Admins manage people, so it is allowed; it is
    /// never hidden.
    #[serde(default)]
    pub approver_added_by_requester: bool,
    /// The latest such introduction, when `approver_added_by_requester`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approver_introduced: Option<Introduction>,
}

/// How the requester's human brought an approver in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum IntroducedBy {
    /// Added them as a user (`users add`).
    Added,
    /// Sent them a fresh invite link (`users invite`).
    Reinvited,
}

/// When and by whom an approving human was brought into the account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Introduction {
    /// Added or re-invited.
    pub how: IntroducedBy,
    /// The name of the human who did it (the requester's human).
    pub by: String,
    /// When.
    pub at: jiff::Timestamp,
}

/// An action and everything known about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ActionView {
    /// The action's id.
    pub action_id: ActionId,
    /// The server it targets.
    pub server_id: ServerId,
    /// What kind of change it is.
    pub action_type: ActionType,
    /// Where it stands.
    pub status: ActionState,
    /// One line describing exactly what runs.
    pub description: String,
    /// Exactly what runs.
    pub content: ActionContent,
    /// Why the requester said it was needed, in their own words (not checked by anyone).
    #[serde(default)]
    pub reason: Option<String>,
    /// Who asked for it.
    pub requested_by: Principal,
    /// How many distinct human approvals it needs to run (0 when it ran under a bypass).
    #[serde(default)]
    pub approvals_required: u32,
    /// When it ran under an investigation's bypass instead of a per-command approval: which
    /// bypass, granted by whom and when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ran_under_bypass: Option<super::investigations::RanUnderBypass>,
    /// When it was requested.
    pub created_at: jiff::Timestamp,
    /// When it last changed state.
    pub updated_at: jiff::Timestamp,
    /// When it expires (pending actions only).
    pub expires_at: Option<jiff::Timestamp>,
    /// Human decisions so far.
    pub approvals: Vec<ApprovalRecord>,
    /// The outcome, once it ran.
    pub result: Option<ExecutionResult>,
}

/// Arguments of `mttrly_approve_action`. The decision takes effect only after the human confirms
/// it in the client; the assistant can never approve on its own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApproveActionInput {
    /// The pending action.
    pub action_id: ActionId,
    /// Whether the user wants it approved or rejected.
    pub decision: Decision,
    /// The user's reason, recorded in the audit log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
}

/// Arguments of `mttrly_cancel_action`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelActionInput {
    /// The pending action.
    pub action_id: ActionId,
    /// Why it is cancelled, recorded in the audit log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
}

bounded_int!(
    /// How many audit entries to return (1 to 500, default 100).
    AuditLimit: u32, min 1, max 500, default 100
);

/// Arguments of `mttrly_get_audit_log`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetAuditLogInput {
    /// Only entries about this server; the whole account when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_id: Option<ServerId>,
    /// Only entries about this action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_id: Option<ActionId>,
    /// Only entries strictly older than this sequence number (from `next_before_seq`), for paging back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before_seq: Option<u64>,
    /// How many entries to return, newest first.
    #[serde(default)]
    pub limit: AuditLimit,
}

/// One audit log entry as a reader sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AuditEntry {
    /// Position in the account's chain.
    pub seq: u64,
    /// When it happened.
    pub at: jiff::Timestamp,
    /// The server concerned, if any.
    pub server_id: Option<ServerId>,
    /// Who did it.
    pub actor: AuditActor,
    /// The channel (mcp, cli, dashboard, telegram, api, agent).
    pub source: Source,
    /// What kind of event.
    pub kind: AuditKind,
    /// The tool, action or alert it is about.
    pub subject: String,
    /// Redacted parameters.
    pub parameters: Value,
    /// How it ended.
    pub outcome: AuditOutcome,
    /// How long it took, in milliseconds.
    pub duration_ms: Option<u64>,
}

/// A page of the audit log, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AuditLogPage {
    /// The entries.
    pub entries: Vec<AuditEntry>,
    /// Pass as `before_seq` to get the next (older) page; absent on the last page.
    pub next_before_seq: Option<u64>,
    /// How many days back entries are kept on this plan.
    pub retention_days: u32,
}
