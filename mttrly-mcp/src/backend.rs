//! Where tools run: the seam between the MCP protocol and mttrly.

use std::future::Future;

use mttrly_core::ids::{ActionId, AssistantSessionId};
use mttrly_core::{MttrlyError, ToolId};
use serde_json::Value;

/// One MCP session, as the backend needs to know it: every call is attributed to this assistant
/// session in the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The assistant session; one per MCP session (a conversation in the client).
    pub id: AssistantSessionId,
    /// The client's self-reported name from `initialize` (`claude-code`), cleaned and capped.
    pub client_name: String,
}

/// What the human decided in the client's confirmation form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecisionKind {
    /// Approve the pending action.
    Approve,
    /// Reject it.
    Reject,
    /// Cancel (withdraw) it.
    Cancel,
}

impl DecisionKind {
    /// The verb, for messages.
    pub const fn verb(self) -> &'static str {
        match self {
            Self::Approve => "approve",
            Self::Reject => "reject",
            Self::Cancel => "cancel",
        }
    }
}

/// A decision a human confirmed through an elicitation this server authored. Only the MCP server
/// builds one, after the client answered `accept` to the form; no tool argument can.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfirmedDecision {
    /// The action.
    pub action_id: ActionId,
    /// What the human chose.
    pub kind: DecisionKind,
    /// The content hash of the action the human was shown: if the action changed meanwhile, the
    /// decision is refused.
    pub seen_sha256: String,
    /// The reason, recorded in the audit log.
    pub reason: Option<String>,
}

/// Runs tools for MCP sessions.
///
/// Implementations enforce everything (authentication, tenancy, plan, surface, approval rules,
/// audit); the MCP server adds no authority of its own and only narrows what it advertises.
pub trait Backend: Send + Sync + 'static {
    /// Who is calling. Over HTTP it is resolved by the transport's authentication and found in the
    /// request's extensions; over stdio it is fixed for the process.
    type Caller: Clone + Send + Sync + 'static;

    /// A stable identity of the caller (account and user). A session stays bound to the caller
    /// that opened it; a request from anyone else on that session is refused.
    fn caller_key(&self, caller: &Self::Caller) -> String;

    /// The tools this caller reaches, in catalog order: what `tools/list` advertises.
    fn tools(&self, caller: &Self::Caller) -> impl Future<Output = Result<Vec<ToolId>, MttrlyError>> + Send;

    /// Runs a catalog tool; returns its structured result (conforming to the tool's output
    /// schema) or the error to show the assistant. Audited by the backend with source `mcp`.
    fn call(
        &self,
        caller: &Self::Caller,
        session: &Session,
        tool: ToolId,
        arguments: Value,
    ) -> impl Future<Output = Result<Value, MttrlyError>> + Send;

    /// Applies a decision a human confirmed in the client. The backend checks the environment's
    /// approval rules for the `mcp` channel, exactly as for any other channel.
    fn decide(
        &self,
        caller: &Self::Caller,
        session: &Session,
        decision: ConfirmedDecision,
    ) -> impl Future<Output = Result<Value, MttrlyError>> + Send;
}
