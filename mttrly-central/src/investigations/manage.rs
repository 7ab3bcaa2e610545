//! People's side of investigations (CLI, dashboard): list the account's, show one with its
//! bypass and the actions under it, close one, revoke its bypass. Any person of the account may
//! look; closing and revoking (which only ever take power away) need a human operator or admin.

use std::sync::Arc;

use mttrly_core::audit::{AuditEvent, AuditKind, AuditOutcome};
use mttrly_core::ids::{BypassId, InvestigationId};
use mttrly_core::tools::investigations::{BypassState, RanUnderBypass};
use mttrly_core::{ErrorCode, MttrlyError, Source};

use super::bypass::state_of;
use crate::db::accounts::TokenOwner;
use crate::db::investigations::{InvestigationRow, LinkedAction};
use crate::db::now_ms;
use crate::events::{InvestigationEnd, Payload, Recorded};
use crate::state::Central;

/// How many linked actions an investigation's view shows.
const SHOWN_ACTIONS: u32 = 100;

/// An investigation as people see it.
#[derive(Debug, Clone)]
pub struct InvestigationView {
    /// The row.
    pub investigation: InvestigationRow,
    /// Its latest bypass, as it stands now.
    pub bypass: BypassState,
    /// The actions created under it, newest first (empty in lists).
    pub actions: Vec<LinkedAction>,
    /// When it closes by itself unless something happens under it (ms; open ones only).
    pub idle_expires_at: Option<i64>,
    /// The server's name and environment as central stores them (`None` in lists, or once the
    /// server left the account): what a person granting a bypass must see.
    pub server: Option<(String, mttrly_core::Environment)>,
}

fn view(
    central: &Central,
    row: InvestigationRow,
    latest: Option<&crate::db::investigations::BypassRow>,
    actions: Vec<LinkedAction>,
) -> InvestigationView {
    let now = now_ms();
    let idle_expires_at = (row.status == mttrly_core::tools::investigations::InvestigationStatus::Open)
        .then(|| row.last_activity_at.saturating_add(super::idle_ms(central)));
    InvestigationView {
        bypass: state_of(central, &row, latest, now),
        investigation: row,
        actions,
        idle_expires_at,
        server: None,
    }
}

fn not_in_account(id: &InvestigationId) -> MttrlyError {
    MttrlyError::new(ErrorCode::NotFound, format!("no investigation {id} in this account"))
        .with_detail("investigation_id", id.as_str())
}

/// The account's investigations, newest first (open ones only when `open_only`).
pub async fn list(
    central: &Central,
    caller: &TokenOwner,
    open_only: bool,
    limit: u32,
) -> Result<Vec<InvestigationView>, MttrlyError> {
    let rows =
        central.db.account(&caller.account_id).investigations().list(open_only, None, limit.clamp(1, 500)).await?;
    Ok(rows.into_iter().map(|(row, latest)| view(central, row, latest.as_ref(), Vec::new())).collect())
}

/// One of the account's investigations with its bypass and linked actions.
pub async fn show(
    central: &Central,
    caller: &TokenOwner,
    id: &InvestigationId,
) -> Result<InvestigationView, MttrlyError> {
    let investigations = central.db.account(&caller.account_id).investigations();
    let row = investigations.get(id).await?.ok_or_else(|| not_in_account(id))?;
    let latest = investigations.latest_bypass(id).await?;
    let actions = investigations.actions(id, SHOWN_ACTIONS).await?;
    let server = central.db.account(&caller.account_id).servers().get(&row.server_id).await?;
    let mut shown = view(central, row, latest.as_ref(), actions);
    shown.server = server.map(|s| (s.name, s.environment));
    Ok(shown)
}

/// The investigation a bypass of the account belongs to.
pub async fn of_bypass(central: &Central, caller: &TokenOwner, id: &BypassId) -> Result<InvestigationId, MttrlyError> {
    let bypass = central.db.account(&caller.account_id).investigations().bypass(id).await?;
    bypass.map(|b| b.investigation_id).ok_or_else(|| {
        MttrlyError::new(ErrorCode::NotFound, format!("no bypass {id} in this account"))
            .with_detail("bypass_id", id.as_str())
    })
}

/// The bypass action `id` of the account ran under, if it did: which, granted by whom, when.
pub async fn ran_under(
    central: &Central,
    account: &mttrly_core::ids::AccountId,
    id: &mttrly_core::ids::ActionId,
) -> Result<Option<RanUnderBypass>, MttrlyError> {
    let bypass = central.db.account(account).investigations().bypass_of_action(id).await?;
    Ok(bypass.map(|b| RanUnderBypass {
        granted_by: b.granter(),
        granted_at: b.granted_at.map(crate::db::timestamp),
        bypass_id: b.id,
        investigation_id: b.investigation_id,
    }))
}

/// Closes an investigation (and revokes its bypass) as a person; closing a closed one answers it
/// as it stands.
pub async fn close(
    central: &Arc<Central>,
    caller: &TokenOwner,
    id: &InvestigationId,
    channel: Source,
) -> Result<InvestigationView, MttrlyError> {
    crate::auth::require_operator(caller)?;
    let investigations = central.db.account(&caller.account_id).investigations();
    let row = investigations.get(id).await?.ok_or_else(|| not_in_account(id))?;
    if let Some((closed, revoked)) = investigations.close(id, "closed", now_ms()).await? {
        let payload = Payload::InvestigationClosed {
            investigation: (&closed).into(),
            end: InvestigationEnd::Closed,
            revoked_bypass: revoked.clone(),
        };
        record(central, caller, &closed, channel, "CloseInvestigation", revoked.as_ref(), payload);
    } else {
        tracing::debug!(investigation = %row.id, "already closed");
    }
    show(central, caller, id).await
}

/// Revokes an investigation's bypass as a person. Idempotent, like the tool.
pub async fn revoke_as_human(
    central: &Arc<Central>,
    caller: &TokenOwner,
    id: &InvestigationId,
    channel: Source,
) -> Result<InvestigationView, MttrlyError> {
    crate::auth::require_operator(caller)?;
    let investigations = central.db.account(&caller.account_id).investigations();
    let row = investigations.get(id).await?.ok_or_else(|| not_in_account(id))?;
    let before = investigations.latest_bypass(id).await?;
    let after = investigations.revoke(id, now_ms()).await?;
    if let (Some(before), Some(after)) = (&before, &after)
        && before.status != after.status
    {
        record(central, caller, &row, channel, "RevokeInvestigationBypass", Some(&after.id), Payload::ApiCall);
    }
    show(central, caller, id).await
}

/// Records a person's change to an investigation, with what subscribers see of it.
fn record(
    central: &Central,
    caller: &TokenOwner,
    row: &InvestigationRow,
    channel: Source,
    operation: &str,
    bypass: Option<&BypassId>,
    payload: Payload,
) {
    let event = AuditEvent {
        at: jiff::Timestamp::now(),
        account_id: caller.account_id.clone(),
        server_id: Some(row.server_id.clone()),
        actor: caller.principal.clone().into(),
        source: channel,
        kind: AuditKind::ApiCall,
        subject: operation.to_owned(),
        parameters: serde_json::json!({ "investigation_id": row.id.as_str(), "bypass_id": bypass.map(BypassId::as_str) }),
        outcome: AuditOutcome::Ok,
        duration_ms: None,
    };
    central.audit(Recorded::new(event, payload));
}

impl InvestigationView {
    /// The view as the CLI prints it (and `InvestigationReply` carries): times as RFC 3339.
    pub fn to_json(&self) -> serde_json::Value {
        use crate::db::timestamp;
        let i = &self.investigation;
        serde_json::json!({
            "investigation": {
                "investigation_id": i.id.as_str(),
                "server_id": i.server_id.as_str(),
                "server_name": self.server.as_ref().map(|(name, _)| name.as_str()),
                "environment": self.server.as_ref().map(|(_, env)| env.as_str()),
                "user_id": i.user_id.as_str(),
                "client_name": i.client_name,
                "title": i.title,
                "alert_id": i.alert_id.as_ref().map(mttrly_core::ids::AlertId::as_str),
                "status": i.status.as_str(),
                "opened_at": timestamp(i.opened_at).to_string(),
                "last_activity_at": timestamp(i.last_activity_at).to_string(),
                "idle_expires_at": self.idle_expires_at.map(|t| timestamp(t).to_string()),
                "closed_at": i.closed_at.map(|t| timestamp(t).to_string()),
                "close_reason": i.close_reason,
            },
            "bypass": self.bypass,
            "actions": self.actions.iter().map(|a| serde_json::json!({
                "action_id": a.id.as_str(),
                "status": a.status,
                "description": a.description,
                "bypass_id": a.bypass_id.as_ref().map(BypassId::as_str),
                "created_at": timestamp(a.created_at).to_string(),
            })).collect::<Vec<_>>(),
        })
    }
}
