//! Reading a caller's actions: one, its full view with the decisions, the pending list.

use mttrly_core::MttrlyError;
use mttrly_core::action::ActionState;
use mttrly_core::ids::{ActionId, ServerId};
use mttrly_core::tools::actions::{ActionView, PendingAction, PendingActionList};

use super::not_found;
use crate::db::accounts::TokenOwner;
use crate::db::actions::ActionRow;
use crate::db::{now_ms, timestamp};
use crate::state::Central;

/// The caller's action.
pub async fn load(central: &Central, caller: &TokenOwner, id: &ActionId) -> Result<ActionRow, MttrlyError> {
    central.db.account(&caller.account_id).actions().get(id).await?.ok_or_else(|| not_found(id))
}

/// The full view of the caller's action.
pub async fn view(central: &Central, caller: &TokenOwner, id: &ActionId) -> Result<ActionView, MttrlyError> {
    let action = load(central, caller, id).await?;
    let mut approvals = central.db.account(&caller.account_id).actions().decisions(id).await?;
    super::introduced::mark(central, &caller.account_id, &action.requested_by, &mut approvals).await?;
    let ran_under_bypass = crate::investigations::ran_under(central, &caller.account_id, &action.id).await?;
    Ok(ActionView {
        action_id: action.id,
        server_id: action.server_id,
        action_type: action.content.action_type(),
        status: action.status,
        description: action.description,
        content: action.content,
        reason: action.reason,
        requested_by: action.requested_by,
        // Stored as 1 (the agent runs it as human-approved); the grant is that approval.
        approvals_required: if ran_under_bypass.is_some() { 0 } else { action.approvals_required },
        ran_under_bypass,
        created_at: timestamp(action.created_at),
        updated_at: timestamp(action.updated_at),
        expires_at: (action.status == ActionState::PendingApproval).then(|| timestamp(action.expires_at)),
        approvals,
        result: action.result,
    })
}

/// The caller's pending actions (closest to expiry first).
pub async fn pending(
    central: &Central,
    caller: &TokenOwner,
    server: Option<ServerId>,
) -> Result<PendingActionList, MttrlyError> {
    let (rows, counts) =
        central.db.account(&caller.account_id).actions().pending_with_approvals(server.as_ref(), 500).await?;
    let now = now_ms();
    let mut actions: Vec<PendingAction> = Vec::new();
    for a in rows.into_iter().filter(|a| a.expires_at > now) {
        let received = counts.get(&a.id).copied().unwrap_or(0);
        actions.push(PendingAction {
            action_id: a.id,
            server_id: a.server_id,
            server_name: a.server_name,
            environment: a.environment,
            action_type: a.content.action_type(),
            description: a.description,
            content: a.content,
            requested_by: a.requested_by,
            created_at: timestamp(a.created_at),
            expires_at: timestamp(a.expires_at),
            approvals_required: a.approvals_required,
            approvals_received: received,
        });
    }
    actions.sort_by_key(|a| a.expires_at);
    Ok(PendingActionList { actions })
}
