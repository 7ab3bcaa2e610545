//! The decisions that stop a pending action: a human rejects it, or its requester (or a human
//! who may decide) withdraws it.

use mttrly_core::action::{ActionEvent, ActionState};
use mttrly_core::approval::check_decider;
use mttrly_core::ids::ActionId;
use mttrly_core::tools::actions::ActionView;
use mttrly_core::{ErrorCode, MttrlyError, Source};

use super::decide::{decider, expire_if_due};
use super::record::audit_decision;
use super::{load, not_found, rule_for, view};
use crate::db::accounts::TokenOwner;
use crate::events;
use crate::state::Central;

/// A human rejects a pending action.
pub async fn reject(
    central: &Central,
    caller: &TokenOwner,
    id: &ActionId,
    reason: Option<String>,
    channel: Source,
) -> Result<ActionView, MttrlyError> {
    let action = load(central, caller, id).await?;
    let result = async {
        expire_if_due(central, &action).await?;
        if action.status != ActionState::PendingApproval {
            return Err(action.status.apply(ActionEvent::Reject).err().unwrap_or_else(|| not_found(id)));
        }
        check_decider(&rule_for(central, &action), &decider(central, caller, channel))?;
        central
            .db
            .account(&action.account_id)
            .actions()
            .reject(id, &caller.principal, channel, &action.content_sha256, reason.as_deref())
            .await
    }
    .await;
    audit_decision(
        central,
        &action,
        &caller.principal,
        channel,
        events::Decision::Reject,
        reason.as_deref(),
        &[],
        &result,
    );
    result?;
    view(central, caller, id).await
}

/// Withdraws a pending action: allowed to the principal that requested it (an assistant may
/// withdraw its own request: that can only make things safer, so it needs no human and is
/// audited as a `withdraw` by that principal) and to humans who may decide (audited as `cancel`).
pub async fn cancel(
    central: &Central,
    caller: &TokenOwner,
    id: &ActionId,
    reason: Option<String>,
    channel: Source,
) -> Result<ActionView, MttrlyError> {
    let action = load(central, caller, id).await?;
    let withdraw = caller.principal == action.requested_by;
    let result = async {
        expire_if_due(central, &action).await?;
        if action.status != ActionState::PendingApproval {
            return Err(action.status.apply(ActionEvent::Cancel).err().unwrap_or_else(|| not_found(id)));
        }
        if !withdraw {
            check_decider(&rule_for(central, &action), &decider(central, caller, channel))?;
        } else if caller.scope.check(mttrly_core::ToolId::CancelAction.spec()).is_err() {
            // Even a withdrawal changes state: a read-only or actions-less token changes nothing.
            return Err(MttrlyError::new(
                ErrorCode::Forbidden,
                "this token is read-only or scoped without the `actions` toolset: it can look at actions but decides nothing, not even a withdrawal",
            ));
        }
        let moved = central
            .db
            .account(&action.account_id)
            .actions()
            .transition(id, ActionState::PendingApproval, ActionState::Cancelled, None)
            .await?;
        if moved {
            Ok(())
        } else {
            Err(MttrlyError::new(ErrorCode::ValidationError, "the action was decided meanwhile"))
        }
    }
    .await;
    let what = if withdraw { events::Decision::Withdraw } else { events::Decision::Cancel };
    audit_decision(central, &action, &caller.principal, channel, what, reason.as_deref(), &[], &result);
    result?;
    view(central, caller, id).await
}
