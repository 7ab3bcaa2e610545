//! The typed events on the bus: what happened (the payload), and where it sits in the audit log.

use std::sync::Arc;

use mttrly_core::Source;
use mttrly_core::action::ActionState;
use mttrly_core::audit::{AuditActor, AuditEvent, AuditKind, AuditOutcome};
use mttrly_core::environment::Environment;
use mttrly_core::ids::{AccountId, ActionId, AlertId, BypassId, InvestigationId, ServerId};
use mttrly_core::tools::common::Severity;

use crate::audit::chain::ChainedRow;
use crate::db::actions::ActionRow;
use crate::db::investigations::InvestigationRow;

/// What an action event is about: enough to name it to a human without a database read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionRef {
    /// The action.
    pub id: ActionId,
    /// Its server.
    pub server_id: ServerId,
    /// The server's name (raw: escape it before showing it to people).
    pub server_name: String,
    /// The server's environment.
    pub environment: Environment,
    /// Central's one-line description (raw: escape it before showing it to people).
    pub description: String,
}

impl From<&ActionRow> for ActionRef {
    fn from(action: &ActionRow) -> Self {
        Self {
            id: action.id.clone(),
            server_id: action.server_id.clone(),
            server_name: action.server_name.clone(),
            environment: action.environment,
            description: action.description.clone(),
        }
    }
}

/// How a decision about an action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// A human approved (the quorum may or may not be reached).
    Approve,
    /// A human rejected it.
    Reject,
    /// A human cancelled it.
    Cancel,
    /// The requester withdrew its own request.
    Withdraw,
    /// No approval prompt could be delivered: failed closed, it never runs.
    FailedClosed,
}

impl Decision {
    /// The word stored in the audit row's `decision` field.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Approve => "approve",
            Self::Reject => "reject",
            Self::Cancel => "cancel",
            Self::Withdraw => "withdraw",
            Self::FailedClosed => "failed_closed",
        }
    }
}

/// What an investigation event is about: enough to name it to a human without a database read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvestigationRef {
    /// The investigation.
    pub id: InvestigationId,
    /// Its server.
    pub server_id: ServerId,
    /// The client it is bound to, by name: the assistant's client name, or the person's name when
    /// a person started it with their own token (raw: escape it before showing it to people).
    pub client_name: String,
    /// Its title: the words of whoever started it, redacted when stored, never central's (raw:
    /// escape it before showing it, and show it as theirs).
    pub title: String,
}

impl From<&InvestigationRow> for InvestigationRef {
    fn from(row: &InvestigationRow) -> Self {
        Self {
            id: row.id.clone(),
            server_id: row.server_id.clone(),
            client_name: row.client_name.clone(),
            title: row.title.clone(),
        }
    }
}

/// The alert an investigation started from, as central stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertRef {
    /// The alert.
    pub id: AlertId,
    /// Its severity.
    pub severity: Severity,
}

/// How an investigation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvestigationEnd {
    /// A person closed it (the event's actor and source say who and through what).
    Closed,
    /// Nothing happened under it for `investigation_idle_minutes`: the sweep closed it.
    Idle,
}

/// What happened, typed. Producers that know more than the generic audit row attach it with
/// [`Recorded::new`]; everything else gets the kind-level payload of [`Payload::generic`].
#[derive(Debug, Clone)]
pub enum Payload {
    /// A tool call (the event's subject is the tool id; action creations are not this).
    ToolCall,
    /// A human's change through the API (the subject names the operation).
    ApiCall,
    /// An action was created: pending approval, or running at once when policy allows. Carries
    /// the stored row because prompt notifiers show exactly what runs; its text is raw (not
    /// redacted, not escaped): a subscriber that shows it to people builds an
    /// [`crate::notify::ApprovalPrompt`] or escapes it the same way.
    ActionCreated(Arc<ActionRow>),
    /// A decision was recorded, or refused (the event's outcome says which).
    ActionDecided {
        /// The action.
        action: ActionRef,
        /// Which decision.
        decision: Decision,
    },
    /// An action finished (or was failed after a restart, outcome unknown).
    ActionExecuted {
        /// The action.
        action: ActionRef,
        /// `succeeded` or `failed`.
        status: ActionState,
        /// The exit code, when a command ran.
        exit_code: Option<i32>,
    },
    /// A pending action expired without a decision.
    ActionExpired {
        /// The action.
        action: ActionRef,
    },
    /// An alert opened.
    AlertOpened {
        /// The alert.
        alert_id: AlertId,
        /// The rule that fired.
        rule: String,
        /// How serious.
        severity: Severity,
        /// What was observed (raw: escape it before showing it to people).
        summary: String,
    },
    /// An alert resolved.
    AlertResolved {
        /// The alert.
        alert_id: AlertId,
    },
    /// An investigation was opened (not resumed: a resume is the same investigation going on).
    InvestigationStarted {
        /// The investigation.
        investigation: InvestigationRef,
        /// The person it works for (the human behind the client), by name (raw).
        person: String,
        /// The alert it started from, when it names one.
        alert: Option<AlertRef>,
    },
    /// An investigation closed.
    InvestigationClosed {
        /// The investigation.
        investigation: InvestigationRef,
        /// Why.
        end: InvestigationEnd,
        /// The bypass revoked with it, if it had a live one.
        revoked_bypass: Option<BypassId>,
    },
    /// An agent opened its session.
    AgentOnline,
    /// An agent's session ended.
    AgentOffline,
    /// Another agent event (enrolled, credentials rotated, …; the subject says which).
    AgentEvent,
    /// An audited event without a typed payload yet.
    Other,
}

impl Payload {
    /// The payload an untyped audit event gets, from its kind alone.
    pub fn generic(event: &AuditEvent) -> Self {
        match event.kind {
            AuditKind::ToolCall => Self::ToolCall,
            AuditKind::ApiCall => Self::ApiCall,
            AuditKind::AgentEvent => Self::AgentEvent,
            AuditKind::ApprovalDecision | AuditKind::ExecutionResult | AuditKind::Alert => Self::Other,
        }
    }
}

/// An audit event with its typed payload: what producers hand to the audit log.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The audit row to write.
    pub audit: AuditEvent,
    /// What subscribers see once the row is durable.
    pub payload: Payload,
}

impl Recorded {
    /// An audit event with a typed payload.
    pub fn new(audit: AuditEvent, payload: Payload) -> Self {
        Self { audit, payload }
    }

    /// Whether the row may wait a few milliseconds for other rows to share its commit.
    ///
    /// Tool calls are the log's bulk (an assistant makes dozens per incident, and each is a row
    /// written after the call has answered) and nothing acts on them: no prompt, notifier or
    /// chat message waits for one, only records and live views, for which a few milliseconds are
    /// nothing. Committing them one small batch at a time cost a commit and an `fsync` per four
    /// or five calls, a third of central's CPU under a stream of calls. Every other event wakes
    /// someone (an approval prompt, a notifier, a chat message, the agent's next step) and is
    /// committed at once.
    pub fn can_wait(&self) -> bool {
        matches!(self.payload, Payload::ToolCall)
    }
}

impl From<AuditEvent> for Recorded {
    fn from(audit: AuditEvent) -> Self {
        let payload = Payload::generic(&audit);
        Self { audit, payload }
    }
}

/// One audited event, published after its row is committed. `seq` and `hash` point at the row,
/// so a subscriber that lagged resyncs from the audit log after the last `seq` it saw.
#[derive(Debug, Clone)]
pub struct Event {
    /// The tenant: subscribers serving people filter on it first.
    pub account_id: AccountId,
    /// The row's position in the account's chain.
    pub seq: u64,
    /// The row's hash (its link in the chain).
    pub hash: [u8; 32],
    /// When it happened.
    pub at: jiff::Timestamp,
    /// The server it concerns, if any.
    pub server_id: Option<ServerId>,
    /// Who did it.
    pub actor: AuditActor,
    /// Through which channel.
    pub source: Source,
    /// The audit kind.
    pub kind: AuditKind,
    /// How it ended.
    pub outcome: AuditOutcome,
    /// The row exactly as stored: subject and parameters already redacted, so a subscriber
    /// showing it (dashboard, chat) shows what the audit log holds and no secret.
    pub row: ChainedRow,
    /// What happened, typed.
    pub payload: Payload,
}

impl Event {
    /// The event for `recorded`, stored as `row` with `hash`.
    pub fn committed(recorded: Recorded, row: ChainedRow, hash: [u8; 32]) -> Self {
        let Recorded { audit, payload } = recorded;
        Self {
            account_id: audit.account_id,
            seq: row.seq,
            hash,
            at: audit.at,
            server_id: audit.server_id,
            actor: audit.actor,
            source: audit.source,
            kind: audit.kind,
            outcome: audit.outcome,
            row,
            payload,
        }
    }
}
