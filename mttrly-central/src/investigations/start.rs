//! `mttrly_start_investigation`: open, or resume the caller's open one on the same server.

use std::sync::Arc;

use mttrly_core::audit::{AuditEvent, AuditKind, AuditOutcome};
use mttrly_core::ids::InvestigationId;
use mttrly_core::tools::investigations::{Investigation, InvestigationStatus, StartInvestigationInput};
use mttrly_core::{ErrorCode, MttrlyError, Source};

use super::{client_of, idle_ms};
use crate::db::accounts::TokenOwner;
use crate::db::investigations::InvestigationRow;
use crate::db::{now_ms, timestamp};
use crate::events::{AlertRef, Payload, Recorded};
use crate::state::Central;

/// Opens an investigation of the server for the caller's human and client, or resumes the one
/// they already have open there (`resumed: true`, its title and alert kept, its activity
/// renewed). The title is redacted before it is stored: it is the assistant's text.
///
/// A new investigation is recorded in the audit log on its own row (subject: its id), carrying
/// [`Payload::InvestigationStarted`] on the event bus: the tool call's row records what was asked,
/// this one what central opened, so the war room can open or join an incident from a durable
/// fact. A resume records nothing more: it is the same investigation going on.
pub async fn start(
    central: &Arc<Central>,
    caller: &TokenOwner,
    source: Source,
    input: StartInvestigationInput,
) -> Result<Investigation, MttrlyError> {
    crate::auth::refuse_viewer(caller, "open investigations")?;
    let server = crate::servers::find(central, caller, &input.server_id).await?;
    let account = central.db.account(&caller.account_id);
    let alert = match &input.alert_id {
        None => None,
        Some(alert) => match account.investigations().alert_severity(alert, &server.id).await? {
            Some(severity) => Some(AlertRef { id: alert.clone(), severity }),
            None => {
                return Err(MttrlyError::new(
                    ErrorCode::ValidationError,
                    format!("alert {alert} is not an alert of server {} in this account", server.name),
                )
                .with_detail("alert_id", alert.as_str())
                .with_detail("server_id", server.id.as_str()));
            }
        },
    };
    let now = now_ms();
    let client_name = match &caller.principal {
        mttrly_core::Principal::Assistant { client_name, .. } => client_name.clone(),
        mttrly_core::Principal::Human { name, .. } => name.clone(),
    };
    let new = InvestigationRow {
        id: InvestigationId::generate(),
        account_id: caller.account_id.clone(),
        server_id: server.id.clone(),
        user_id: caller.principal.accountable_user().clone(),
        client: client_of(caller).to_owned(),
        client_name,
        title: mttrly_core::redactor::redact(input.title.as_str()).text.into_owned(),
        alert_id: input.alert_id,
        status: InvestigationStatus::Open,
        opened_at: now,
        last_activity_at: now,
        closed_at: None,
        close_reason: None,
        version: 0,
    };
    let idle = idle_ms(central);
    let (row, resumed) = account.investigations().open_or_resume(new, idle, now).await?;
    if !resumed {
        record_opened(central, caller, source, &row, alert);
    }
    Ok(Investigation {
        next_step: format!(
            "Pass investigation_id {} to mttrly_execute_command / mttrly_execute_script on this server so they are linked to it. \
             To run fixes without per-command approval for a while, ask for a bypass with mttrly_acquire_investigation_bypass; \
             a human must grant it with their own TOTP code (never ask them for the code).",
            row.id
        ),
        investigation_id: row.id,
        server_id: row.server_id,
        title: row.title,
        alert_id: row.alert_id,
        status: row.status,
        opened_at: timestamp(row.opened_at),
        last_activity_at: timestamp(row.last_activity_at),
        idle_expires_at: timestamp(row.last_activity_at.saturating_add(idle)),
        resumed,
    })
}

/// The audit row of a new investigation, with its typed payload. Like an action's creation row,
/// its kind is the tool call that made it and its subject the new id (the server timeline lists
/// the investigation's opening from its own table and leaves this copy out).
fn record_opened(
    central: &Central,
    caller: &TokenOwner,
    source: Source,
    row: &InvestigationRow,
    alert: Option<AlertRef>,
) {
    let event = AuditEvent {
        at: jiff::Timestamp::now(),
        account_id: row.account_id.clone(),
        server_id: Some(row.server_id.clone()),
        actor: caller.principal.clone().into(),
        source,
        kind: AuditKind::ToolCall,
        subject: row.id.to_string(),
        parameters: serde_json::json!({
            "opened": "investigation",
            "title": row.title,
            "client_name": row.client_name,
            "alert_id": row.alert_id.as_ref().map(mttrly_core::ids::AlertId::as_str),
        }),
        outcome: AuditOutcome::Ok,
        duration_ms: None,
    };
    let payload = Payload::InvestigationStarted { investigation: row.into(), person: caller.user_name.clone(), alert };
    central.audit(Recorded::new(event, payload));
}
