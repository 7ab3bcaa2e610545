//! A human approves: the content they saw, the rule's checks, the decision and (on quorum) the
//! move to running in one transaction, then the execution on its own task.

use std::sync::Arc;
use std::time::Duration;

use mttrly_core::action::{ActionEvent, ActionState};
use mttrly_core::approval::{ApprovalEffect, check_approval};
use mttrly_core::ids::ActionId;
use mttrly_core::tools::actions::ActionView;
use mttrly_core::{ErrorCode, MttrlyError, Source};

use super::decide::{decider, expire_if_due, prior_approvals};
use super::record::audit_decision;
use super::{execute, load, not_found, rule_for, view};
use crate::db::accounts::TokenOwner;
use crate::db::actions::ActionRow;
use crate::events;
use crate::state::Central;

/// A human approves. `seen_sha256` is the content hash the human was shown: a mismatch refuses
/// the approval. When the quorum is reached the action is marked running (committed) and then
/// executed; this waits up to `wait` for the outcome.
pub async fn approve(
    central: &Arc<Central>,
    caller: &TokenOwner,
    id: &ActionId,
    seen_sha256: Option<&str>,
    channel: Source,
    wait: Duration,
) -> Result<ActionView, MttrlyError> {
    let action = load(central, caller, id).await?;
    let result = decide_approve(central, caller, &action, seen_sha256, channel).await;
    audit_decision(
        central,
        &action,
        &caller.principal,
        channel,
        events::Decision::Approve,
        None,
        &result.as_ref().map(|_| ()).map_err(Clone::clone),
    );
    match result? {
        ApprovalEffect::Recorded { .. } => {}
        ApprovalEffect::QuorumReached => {
            let running = ActionRow { status: ActionState::Running, ..action.clone() };
            // The execution runs on its own task: it completes (and records its outcome) even if
            // this caller stops waiting.
            let mut job = tokio::spawn(execute::run(Arc::clone(central), running));
            if let Ok(Ok((_, result))) = tokio::time::timeout(wait, &mut job).await {
                let mut view = view(central, caller, id).await?;
                // Includes what is shown once (a reinstall command) and never stored.
                view.result = Some(result);
                return Ok(view);
            }
        }
    }
    view(central, caller, id).await
}

async fn decide_approve(
    central: &Central,
    caller: &TokenOwner,
    action: &ActionRow,
    seen_sha256: Option<&str>,
    channel: Source,
) -> Result<ApprovalEffect, MttrlyError> {
    expire_if_due(central, action).await?;
    if action.status != ActionState::PendingApproval {
        return Err(action
            .status
            .apply(ActionEvent::Approve)
            .err()
            .unwrap_or_else(|| not_found(&action.id))
            .with_detail("action_id", action.id.as_str()));
    }
    if let Some(seen) = seen_sha256
        && seen != action.content_sha256
    {
        return Err(MttrlyError::new(
            ErrorCode::ValidationError,
            "the action's content is not what you were shown; review it again before approving",
        )
        .with_detail("action_id", action.id.as_str())
        .with_detail("content_sha256", action.content_sha256.as_str()));
    }
    let rule = rule_for(central, action);
    let prior = prior_approvals(central, action).await?;
    let effect = check_approval(&rule, &action.requested_by, &decider(caller, channel), &prior)?;
    // One transaction: the decision, and (on quorum) pending → approved → running, conditional on
    // the action still being pending, so a racing second approval finds it already decided.
    let quorum = effect == ApprovalEffect::QuorumReached;
    central
        .db
        .account(&action.account_id)
        .actions()
        .approve(&action.id, &caller.principal, channel, &action.content_sha256, quorum)
        .await?;
    Ok(effect)
}
