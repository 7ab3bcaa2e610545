//! The audit event: one row of the append-only, hash-chained audit log.
//!
//! Every tool call (read or execute), approval decision, execution result, alert and agent event
//! becomes one [`AuditEvent`]. The storage (and the hash chain over rows) lives in central; this
//! type is what every producer fills in and every reader gets back.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ErrorCode;
use crate::ids::{AccountId, AssistantSessionId, ServerId, UserId};
use crate::principal::{Principal, Source};

/// Who caused an audited event. Wider than [`Principal`]: agents and central itself also act.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AuditActor {
    /// A person.
    Human {
        /// The user.
        user_id: UserId,
        /// Display name at the time of the event.
        name: String,
    },
    /// An assistant session acting for a user.
    Assistant {
        /// The session.
        session_id: AssistantSessionId,
        /// The client's self-reported name.
        client_name: String,
        /// The human the session acts for.
        on_behalf_of: UserId,
    },
    /// A server's agent.
    Agent {
        /// The server.
        server_id: ServerId,
    },
    /// Central itself (expiry sweeps, alert rules, crash recovery).
    System,
}

impl From<Principal> for AuditActor {
    fn from(principal: Principal) -> Self {
        match principal {
            Principal::Human { user_id, name } => Self::Human { user_id, name },
            Principal::Assistant { session_id, client_name, on_behalf_of } => {
                Self::Assistant { session_id, client_name, on_behalf_of }
            }
        }
    }
}

/// What kind of thing happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuditKind {
    /// A tool was called (the subject is the tool id).
    ToolCall,
    /// A human approved or rejected an action (the subject is the action id).
    ApprovalDecision,
    /// An action finished on the agent.
    ExecutionResult,
    /// An alert opened or resolved.
    Alert,
    /// An agent connected, disconnected, enrolled or had its credentials rotated.
    AgentEvent,
    /// A human changed the registry or tokens through the API (add or remove a server, issue a token).
    ApiCall,
}

impl AuditKind {
    /// Every kind.
    pub const ALL: [Self; 6] =
        [Self::ToolCall, Self::ApprovalDecision, Self::ExecutionResult, Self::Alert, Self::AgentEvent, Self::ApiCall];

    /// The name serde writes (and the audit table stores).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ToolCall => "tool_call",
            Self::ApprovalDecision => "approval_decision",
            Self::ExecutionResult => "execution_result",
            Self::Alert => "alert",
            Self::AgentEvent => "agent_event",
            Self::ApiCall => "api_call",
        }
    }
}

/// How it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum AuditOutcome {
    /// It worked (or, for a decision, it was recorded).
    Ok,
    /// It was refused or failed, with the code the caller saw.
    Error {
        /// The seed error code.
        code: ErrorCode,
    },
}

/// One audited event, before it is chained and stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditEvent {
    /// When it happened.
    pub at: jiff::Timestamp,
    /// The tenant it belongs to.
    pub account_id: AccountId,
    /// The server concerned, if any.
    pub server_id: Option<ServerId>,
    /// Who did it.
    pub actor: AuditActor,
    /// The channel it came through.
    pub source: Source,
    /// What kind of event.
    pub kind: AuditKind,
    /// The tool id, action id or alert id the event is about.
    pub subject: String,
    /// The request's parameters, already redacted.
    pub parameters: Value,
    /// How it ended.
    pub outcome: AuditOutcome,
    /// How long it took, in milliseconds, where that means something.
    pub duration_ms: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_kind_names_are_what_serde_writes() {
        for kind in AuditKind::ALL {
            assert_eq!(serde_json::to_value(kind).ok(), Some(serde_json::Value::String(kind.as_str().to_owned())));
        }
    }
}
