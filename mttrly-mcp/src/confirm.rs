//! Approving and cancelling through MCP: the human confirms in the client, never the model.
//!
//! `mttrly_approve_action` and `mttrly_cancel_action` take no confirmation argument a model could
//! fill. The server looks the action up, then asks the *client* to show the human a form it
//! authored (MCP elicitation) with the server, its environment and exactly what would run. Only an
//! `accept` with the box ticked turns into a [`ConfirmedDecision`], bound to the content hash the
//! human saw; the backend then applies the environment's approval rules for the `mcp` channel.

use std::time::Duration;

use mttrly_core::catalog::ToolId;
use mttrly_core::input::parse_input;
use mttrly_core::tools::actions::{ActionView, ApproveActionInput, CancelActionInput, Decision};
use mttrly_core::tools::servers::ServerStatus;
use mttrly_core::{ErrorCode, MttrlyError};
use rmcp::service::{ElicitationError, RequestContext};
use rmcp::{Peer, RoleServer};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::backend::{Backend, ConfirmedDecision, DecisionKind, Session};

/// How long the form waits for the human. Shorter than an action's time to live, so an answer
/// never arrives for an action that expired while the form was open.
const FORM_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// The form's one field. The human ticks it in the client; the model never sees a way to.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
struct Confirmation {
    /// Tick to confirm. Nothing happens unless you do.
    confirm: bool,
}

rmcp::elicit_safe!(Confirmation);

fn cli_hint(id: &str, kind: DecisionKind) -> String {
    match kind {
        DecisionKind::Approve => format!("mttrly-cli actions approve {id}"),
        // A human withdraws a request by rejecting it.
        DecisionKind::Reject | DecisionKind::Cancel => format!("mttrly-cli actions reject {id}"),
    }
}

fn not_confirmed(id: &str, kind: DecisionKind, why: &str) -> MttrlyError {
    MttrlyError::new(
        ErrorCode::Forbidden,
        format!("{why}; nothing was changed. To {} it, a human can run `{}`", kind.verb(), cli_hint(id, kind)),
    )
    .with_detail("action_id", id)
    .with_detail("hint", cli_hint(id, kind))
}

/// Handles `mttrly_approve_action` / `mttrly_cancel_action`.
pub(crate) async fn decide<B: Backend>(
    backend: &B,
    caller: &B::Caller,
    session: &Session,
    tool: ToolId,
    arguments: Value,
    context: &RequestContext<RoleServer>,
) -> Result<Value, MttrlyError> {
    let (action_id, kind, reason) = if tool == ToolId::ApproveAction {
        let input = parse_input::<ApproveActionInput>(arguments)?;
        let kind = match input.decision {
            Decision::Approve => DecisionKind::Approve,
            Decision::Reject => DecisionKind::Reject,
        };
        (input.action_id, kind, input.reason.map(|r| r.as_str().to_owned()))
    } else {
        let input = parse_input::<CancelActionInput>(arguments)?;
        (input.action_id, DecisionKind::Cancel, input.reason.map(|r| r.as_str().to_owned()))
    };
    let id = action_id.as_str().to_owned();
    // Look the action up as the caller (tenancy and existence are the backend's checks).
    let view: ActionView =
        decode(backend.call(caller, session, ToolId::GetActionResult, json!({ "action_id": id })).await?, "action")?;
    if view.status != mttrly_core::action::ActionState::PendingApproval {
        return Err(MttrlyError::new(
            ErrorCode::ValidationError,
            format!("action {id} is {}, not pending approval: there is nothing to {}", view.status, kind.verb()),
        )
        .with_detail("action_id", id.as_str())
        .with_detail("status", view.status.as_str()));
    }
    let server: ServerStatus = decode(
        backend.call(caller, session, ToolId::GetServerStatus, json!({ "server_id": view.server_id.as_str() })).await?,
        "server",
    )?;
    let message = form_message(&view, &server, kind);
    match ask(&context.peer, message).await {
        Ok(true) => {}
        Ok(false) => return Err(not_confirmed(&id, kind, "the human did not tick the confirmation")),
        Err(ElicitationError::UserDeclined) => return Err(not_confirmed(&id, kind, "the human declined")),
        Err(ElicitationError::UserCancelled) => {
            return Err(not_confirmed(&id, kind, "the human dismissed the confirmation"));
        }
        Err(ElicitationError::CapabilityNotSupported) => {
            return Err(not_confirmed(
                &id,
                kind,
                "this MCP client cannot show a confirmation form (no elicitation support), so the decision cannot be made here",
            ));
        }
        Err(e) => {
            tracing::warn!(error = %e, action = %id, "confirmation form failed");
            return Err(not_confirmed(&id, kind, &format!("the confirmation form failed ({e})")));
        }
    }
    backend
        .decide(
            caller,
            session,
            ConfirmedDecision { action_id, kind, seen_sha256: view.content.content_sha256(), reason },
        )
        .await
}

async fn ask(peer: &Peer<RoleServer>, message: String) -> Result<bool, ElicitationError> {
    match peer.elicit_with_timeout::<Confirmation>(message, Some(FORM_TIMEOUT)).await? {
        Some(c) => Ok(c.confirm),
        None => Ok(false),
    }
}

fn decode<T: serde::de::DeserializeOwned>(value: Value, what: &str) -> Result<T, MttrlyError> {
    serde_json::from_value(value)
        .map_err(|e| MttrlyError::new(ErrorCode::InternalError, format!("unexpected {what} description: {e}")))
}

/// What the human reads before deciding: the server, its environment, and exactly what runs.
fn form_message(view: &ActionView, server: &ServerStatus, kind: DecisionKind) -> String {
    let what = serde_json::to_string_pretty(&view.content).unwrap_or_default();
    let verb = match kind {
        DecisionKind::Approve => "APPROVE",
        DecisionKind::Reject => "REJECT",
        DecisionKind::Cancel => "CANCEL",
    };
    // Facts from central first; text the assistant wrote (the description carries its reason)
    // last, on one line and cut, so it can never pose as the content.
    let assistant_text: String =
        view.description.chars().map(|c| if c.is_control() { ' ' } else { c }).take(300).collect();
    format!(
        "{verb} action {id}?\n\nServer: {name} ({sid})\nEnvironment: {env}\nRequested by: {by}\n\nExactly what runs:\n{what}\n\nContent SHA-256: {sha}\n\nTick the box and accept only if this is what you want. Your assistant cannot do this for you.\n\n(Request summary, which may contain the assistant's own words: {assistant_text})",
        id = view.action_id,
        name = server.server.name,
        sid = server.server.server_id,
        env = server.server.environment,
        by = view.requested_by,
        sha = view.content.content_sha256(),
    )
}
