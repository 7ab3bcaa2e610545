//! `mttrly_approve_action` and `mttrly_cancel_action`: the assistant never decides.
//!
//! Whoever calls a tool is an assistant's client (central's `/mcp`, the standalone MCP server
//! relaying over `ToolService`, or a program on the raw API). An answer from that client — even a
//! form "the human" accepted — proves only that the client answered, and the assistant drives
//! the client. So no decision is ever made here: `mttrly_approve_action` answers `FORBIDDEN` with
//! the exact commands a human runs, naming only the channels this central offers (or saying first
//! that none of them is accepted for the action's environment), with the action's dashboard page
//! (`details.action_url`) when the dashboard is one of them: `mttrly-mcp` sends a client with
//! URL-mode elicitation there and reports what the human signed in there decided; a client's
//! answer still decides nothing. `mttrly_cancel_action` withdraws
//! a pending action only for the principal that requested it: that can never cause a run, needs no
//! human, and is audited as that principal's withdrawal.

use std::sync::Arc;

use mttrly_core::Source;
use mttrly_core::action::ActionState;
use mttrly_core::approval::channels_sentence;
use mttrly_core::tools::actions::{ActionView, ApproveActionInput, CancelActionInput, Decision};
use mttrly_core::{ErrorCode, MttrlyError};

use crate::actions;
use crate::db::accounts::TokenOwner;
use crate::db::actions::ActionRow;
use crate::db::now_ms;
use crate::state::Central;

/// How a human decides through `channel`, for instructions. Only channels central offers are ever
/// passed here (see [`Central::decision_channels`]).
fn how(central: &Central, channel: Source, action: &ActionRow, decision: Decision) -> String {
    let verb = match decision {
        Decision::Approve => "approve",
        Decision::Reject => "reject",
    };
    match channel {
        Source::Cli => format!("`mttrly-cli actions {verb} {}`", action.id),
        Source::Dashboard => match central.action_page(&action.id) {
            Some(url) => format!("{verb} it on the dashboard at {url}"),
            None => format!("{verb} it on the dashboard"),
        },
        Source::Telegram => format!("{verb} it from the Telegram approval message"),
        Source::Slack => format!("{verb} it from the Slack approval message"),
        Source::Mcp | Source::Api | Source::Agent => format!("{verb} it through {channel}"),
    }
}

/// The action's state as a decision would find it: a pending action past its time is expired,
/// even before the sweeper marks it.
fn effective_status(action: &ActionRow) -> ActionState {
    if action.status == ActionState::PendingApproval && action.expires_at <= now_ms() {
        ActionState::Expired
    } else {
        action.status
    }
}

/// Refuses a state that leaves nothing to decide, in words.
fn not_pending(action: &ActionRow, what: &str) -> MttrlyError {
    let status = effective_status(action);
    MttrlyError::new(
        if status == ActionState::Expired { ErrorCode::ActionExpired } else { ErrorCode::ValidationError },
        format!("action {} {}: there is nothing to {what}", action.id, status.phrase()),
    )
    .with_detail("action_id", action.id.as_str())
    .with_detail("status", status.as_str())
}

/// The answer to any decision asked of an assistant's client: who can decide, and how.
fn human_must_decide(central: &Central, action: &ActionRow, asked: Decision) -> MttrlyError {
    let usable = actions::usable_channels(central, action);
    let channels: Vec<&str> = usable.iter().map(|c| c.as_str()).collect();
    if usable.is_empty() {
        // Said first, before anything else: nobody can decide this here.
        return MttrlyError::new(
            ErrorCode::Forbidden,
            format!(
                "nothing can decide action {} on this central: {} ({} environment); it will expire unless the approval rule changes",
                action.id,
                channels_sentence(&usable),
                action.environment
            ),
        )
        .with_detail("action_id", action.id.as_str())
        .with_detail("allowed_channels", channels);
    }
    let approve: Vec<String> = usable.iter().map(|c| how(central, *c, action, Decision::Approve)).collect();
    let reject: Vec<String> = usable.iter().map(|c| how(central, *c, action, Decision::Reject)).collect();
    let rule = actions::rule_for(central, action);
    let who = if rule.requester_may_approve {
        "A human"
    } else {
        "A human other than the one who requested it (or whose assistant did)"
    };
    let (first, second) = match asked {
        Decision::Approve => (&approve, &reject),
        Decision::Reject => (&reject, &approve),
    };
    // A rule that asks for a second factor is said so: the code is the human's to type into the
    // CLI, and an assistant asking for it would be asking for the one thing it must never hold.
    let totp = rule.second_factor == mttrly_core::approval::SecondFactor::Totp;
    let message = format!(
        "an assistant cannot approve or reject actions, and an answer from an MCP client is not proof that a human looked. \
         {who} must decide: ask the user to {} (or to {}); {}.{} Nothing was changed.",
        first.join(" or "),
        second.join(" or "),
        channels_sentence(&usable),
        if totp {
            " Approving needs a fresh TOTP code, which the human types into the CLI or the dashboard page when it asks; never ask them for the code."
        } else {
            ""
        },
    );
    let refused = MttrlyError::new(ErrorCode::Forbidden, message);
    // The page where a signed-in human decides: an MCP server opens it for the user through
    // URL-mode elicitation (`mttrly-mcp`), and a client without that shows it from here.
    let refused = match central.action_page(&action.id).filter(|_| usable.contains(&Source::Dashboard)) {
        Some(url) => refused.with_detail("action_url", url),
        None => refused,
    };
    refused
        .with_detail("second_factor", rule.second_factor.as_str())
        .with_detail("action_id", action.id.as_str())
        .with_detail("allowed_channels", channels)
        .with_detail("hint", approve.join(" or "))
        .with_detail("approve", approve)
        .with_detail("reject", reject)
        .with_detail("four_eyes", !rule.requester_may_approve)
}

/// `mttrly_approve_action`: never a decision; the exact way a human makes it.
pub(crate) async fn approve(
    central: &Arc<Central>,
    caller: &TokenOwner,
    input: ApproveActionInput,
) -> Result<ActionView, MttrlyError> {
    let action = actions::load(central, caller, &input.action_id).await?;
    if effective_status(&action) != ActionState::PendingApproval {
        return Err(not_pending(&action, if input.decision == Decision::Approve { "approve" } else { "reject" }));
    }
    Err(human_must_decide(central, &action, input.decision))
}

/// `mttrly_cancel_action`: the requester withdraws its own pending request; anything else is a
/// human's decision (reject), answered like [`approve`].
pub(crate) async fn cancel(
    central: &Arc<Central>,
    caller: &TokenOwner,
    source: Source,
    input: CancelActionInput,
) -> Result<ActionView, MttrlyError> {
    let action = actions::load(central, caller, &input.action_id).await?;
    if effective_status(&action) != ActionState::PendingApproval {
        return Err(not_pending(&action, "cancel"));
    }
    if caller.principal != action.requested_by {
        let err = human_must_decide(central, &action, Decision::Reject);
        let message = format!(
            "only the assistant session that requested action {} can withdraw it; {}",
            action.id,
            err.message()
        );
        let mut refused = MttrlyError::new(ErrorCode::Forbidden, message);
        if let serde_json::Value::Object(details) = err.details() {
            for (k, v) in details {
                refused = refused.with_detail(k, v.clone());
            }
        }
        return Err(refused);
    }
    let reason = input.reason.map(|r| r.as_str().to_owned());
    actions::cancel(central, caller, &action.id, reason, source).await
}
