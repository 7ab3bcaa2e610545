//! Central as an MCP backend: the tools run in-process, as the session's assistant principal.
//!
//! `/mcp` is mounted by [`crate::http`], which authenticates the request and puts the token's
//! [`TokenOwner`] in its extensions. Every call here is attributed to the MCP session's assistant
//! (on behalf of the token's human) with source `mcp`, and audited like any other tool call. A
//! decision arrives here only after the human confirmed it in the client (see `mttrly-mcp`); it
//! is recorded as that human's, through the `mcp` channel, which the environment's approval
//! rules may refuse (production does by default).

use std::sync::Arc;
use std::time::{Duration, Instant};

use mttrly_core::{ErrorCode, MttrlyError, Principal, Source, ToolId};
use mttrly_mcp::{Backend, ConfirmedDecision, DecisionKind, Session};
use serde_json::{Value, json};

use crate::actions;
use crate::audit::events;
use crate::db::accounts::TokenOwner;
use crate::state::Central;
use crate::tools;

/// How long an MCP approval waits for the execution before returning the action as it stands.
const APPROVE_WAIT: Duration = Duration::from_secs(60);

/// Central's tools for MCP sessions.
pub struct CentralBackend {
    central: Arc<Central>,
}

impl CentralBackend {
    /// Serves `central`'s tools.
    pub fn new(central: Arc<Central>) -> Self {
        Self { central }
    }
}

/// The caller as the MCP session's assistant: the session's id and client name, on behalf of the
/// token's human. An assistant token keeps the name its human gave it.
fn as_assistant(owner: &TokenOwner, session: &Session) -> TokenOwner {
    let client_name = match &owner.principal {
        Principal::Assistant { client_name, .. } => client_name.clone(),
        Principal::Human { .. } => session.client_name.clone(),
    };
    TokenOwner {
        principal: Principal::Assistant {
            session_id: session.id.clone(),
            client_name,
            on_behalf_of: owner.principal.accountable_user().clone(),
        },
        ..owner.clone()
    }
}

/// The assistant behind a call the standalone MCP server relays over gRPC: one stable session id
/// per human and client name, so its audit rows group together.
pub fn relayed_assistant(owner: &TokenOwner, client_name: &str) -> TokenOwner {
    use sha2::Digest as _;
    let name: String = client_name.chars().filter(|c| c.is_ascii_graphic() || *c == ' ').take(64).collect();
    let user = owner.principal.accountable_user().clone();
    let digest = sha2::Sha256::digest(format!("{}/{user}/{name}", owner.account_id).as_bytes());
    let session_id = crate::db::accounts::derived_session_id(&digest);
    as_assistant(
        owner,
        &Session { id: session_id, client_name: if name.is_empty() { "mcp-client".to_owned() } else { name } },
    )
}

/// The human behind the token, deciding through the `mcp` channel after confirming in the client.
fn as_human(owner: &TokenOwner) -> TokenOwner {
    TokenOwner {
        principal: Principal::Human {
            user_id: owner.principal.accountable_user().clone(),
            name: owner.user_name.clone(),
        },
        ..owner.clone()
    }
}

impl Backend for CentralBackend {
    type Caller = TokenOwner;

    fn caller_key(&self, caller: &TokenOwner) -> String {
        format!("{}/{}", caller.account_id, caller.principal.accountable_user())
    }

    async fn tools(&self, caller: &TokenOwner) -> Result<Vec<ToolId>, MttrlyError> {
        let surface = tools::surface(&self.central, caller);
        Ok(mttrly_core::catalog::specs()
            .iter()
            .filter(|s| tools::is_available(s.id) && surface.check(s).is_ok())
            .map(|s| s.id)
            .collect())
    }

    async fn call(
        &self,
        caller: &TokenOwner,
        session: &Session,
        tool: ToolId,
        arguments: Value,
    ) -> Result<Value, MttrlyError> {
        let assistant = as_assistant(caller, session);
        tools::call_audited(&self.central, &assistant, Source::Mcp, tool, arguments).await
    }

    async fn decide(
        &self,
        caller: &TokenOwner,
        session: &Session,
        decision: ConfirmedDecision,
    ) -> Result<Value, MttrlyError> {
        let started = Instant::now();
        let assistant = as_assistant(caller, session);
        let tool = match decision.kind {
            DecisionKind::Approve | DecisionKind::Reject => ToolId::ApproveAction,
            DecisionKind::Cancel => ToolId::CancelAction,
        };
        let arguments = json!({
            "action_id": decision.action_id.as_str(),
            "decision": decision.kind.verb(),
            "reason": decision.reason,
            "confirmed_by_human": true,
        });
        let outcome = self.run_decision(caller, &assistant, tool, &decision).await;
        self.central.audit(events::tool_call(
            &assistant,
            Source::Mcp,
            tool.as_str(),
            &arguments,
            &outcome,
            started.elapsed(),
        ));
        outcome
    }
}

impl CentralBackend {
    async fn run_decision(
        &self,
        caller: &TokenOwner,
        assistant: &TokenOwner,
        tool: ToolId,
        decision: &ConfirmedDecision,
    ) -> Result<Value, MttrlyError> {
        tools::admit(&self.central, assistant, tool)?;
        let human = as_human(caller);
        let id = &decision.action_id;
        let view = match decision.kind {
            DecisionKind::Approve => {
                actions::approve(&self.central, &human, id, Some(&decision.seen_sha256), Source::Mcp, APPROVE_WAIT)
                    .await?
            }
            DecisionKind::Reject => {
                let action = actions::load(&self.central, &human, id).await?;
                if action.content_sha256 != decision.seen_sha256 {
                    return Err(MttrlyError::new(
                        ErrorCode::ValidationError,
                        "the action's content is not what you were shown; review it again",
                    ));
                }
                actions::reject(&self.central, &human, id, decision.reason.clone(), Source::Mcp).await?
            }
            DecisionKind::Cancel => actions::cancel(&self.central, &human, id, Source::Mcp).await?,
        };
        serde_json::to_value(view)
            .map_err(|e| MttrlyError::new(ErrorCode::InternalError, format!("cannot encode the action: {e}")))
    }
}
