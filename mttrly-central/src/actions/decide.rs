//! What every human decision shares: who may decide, the approvals already given, and the expiry
//! a late decision runs into. `mttrly_core::approval` judges; this gathers what it judges.

use mttrly_core::action::{ActionEvent, ActionState};
use mttrly_core::approval::{Decider, PriorApproval, check_approval};
use mttrly_core::tools::actions::Decision;
use mttrly_core::{MttrlyError, Role, Source};

use super::{not_found, rule_for};
use crate::db::accounts::TokenOwner;
use crate::db::actions::ActionRow;
use crate::db::now_ms;
use crate::state::Central;

pub(super) fn decider<'a>(central: &'a Central, caller: &'a TokenOwner, channel: Source) -> Decider<'a> {
    Decider {
        principal: &caller.principal,
        is_admin: caller.role == Role::Admin,
        may_decide: caller.role != Role::Viewer,
        // The token's own scope, not the deployment's: a deployment that hides the actions tools
        // from assistants still needs its humans to decide.
        token_may_decide: caller.scope.check(mttrly_core::ToolId::ApproveAction.spec()).is_ok(),
        channel,
        existing_channels: &central.decision_channels,
    }
}

/// Whether `caller` could approve `action` through the CLI right now, or why not: what
/// `actions show` tells the human before they try. Checks exactly what an approval checks,
/// without recording anything.
pub async fn approval_check(central: &Central, caller: &TokenOwner, action: &ActionRow) -> Result<(), MttrlyError> {
    approval_check_via(central, caller, action, Source::Cli).await
}

/// [`approval_check`] for a decision through `channel`: the dashboard asks it for its own
/// channel, so a rule that leaves the dashboard out shows no buttons there.
pub async fn approval_check_via(
    central: &Central,
    caller: &TokenOwner,
    action: &ActionRow,
    channel: Source,
) -> Result<(), MttrlyError> {
    if action.status == ActionState::PendingApproval && action.expires_at <= now_ms() {
        return ActionState::Expired.apply(ActionEvent::Approve).map(|_| ());
    }
    action.status.apply(ActionEvent::Approve)?;
    let prior = prior_approvals(central, action).await?;
    check_approval(&rule_for(central, action), &action.requested_by, &decider(central, caller, channel), &prior)
        .map(|_| ())
}

/// [`approval_check_via`] for a page that has just counted `received` approvals of `action` in
/// the same read as the action itself: with none, there are no prior approvals to read back (the
/// pending page judges up to 200 actions, and that read was one reader round trip each). The
/// answer only decides what the page offers; the approval itself checks everything again.
pub async fn approval_check_counted(
    central: &Central,
    caller: &TokenOwner,
    action: &ActionRow,
    channel: Source,
    received: u32,
) -> Result<(), MttrlyError> {
    if received > 0 {
        return approval_check_via(central, caller, action, channel).await;
    }
    if action.status == ActionState::PendingApproval && action.expires_at <= now_ms() {
        return ActionState::Expired.apply(ActionEvent::Approve).map(|_| ());
    }
    action.status.apply(ActionEvent::Approve)?;
    check_approval(&rule_for(central, action), &action.requested_by, &decider(central, caller, channel), &[])
        .map(|_| ())
}

/// The approvals already recorded for `action` that still count, each as the user it counts
/// against: only by people who are still living users of the account and whom the rule would
/// still admit (role and approver list). An approval by someone removed since (the usual answer to
/// a compromised account) or demoted below the rule no longer counts toward the quorum; it stays
/// in the record and the audit log.
pub(super) async fn prior_approvals(central: &Central, action: &ActionRow) -> Result<Vec<PriorApproval>, MttrlyError> {
    let account = central.db.account(&action.account_id);
    let decisions = account.actions().decisions(&action.id).await?;
    if !decisions.iter().any(|d| d.decision == Decision::Approve) {
        return Ok(Vec::new());
    }
    let rule = rule_for(central, action);
    let living = account.users().list().await?;
    Ok(decisions
        .into_iter()
        .filter(|d| d.decision == Decision::Approve)
        .map(|d| d.decided_by.accountable_user().clone())
        .filter(|user| living.iter().any(|u| &u.id == user && rule.approvers.admits(&u.name, u.role)))
        .map(|user_id| PriorApproval { user_id })
        .collect())
}

/// Expires a pending action whose time is up (so a late decision sees `ACTION_EXPIRED`).
pub(super) async fn expire_if_due(central: &Central, action: &ActionRow) -> Result<(), MttrlyError> {
    if action.status == ActionState::PendingApproval && action.expires_at <= now_ms() {
        central
            .db
            .account(&action.account_id)
            .actions()
            .transition(&action.id, ActionState::PendingApproval, ActionState::Expired, None)
            .await?;
        return Err(ActionState::Expired
            .apply(ActionEvent::Approve)
            .err()
            .unwrap_or_else(|| not_found(&action.id))
            .with_detail("action_id", action.id.as_str()));
    }
    Ok(())
}
