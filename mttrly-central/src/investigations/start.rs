//! `mttrly_start_investigation`: open, or resume the caller's open one on the same server.

use std::sync::Arc;

use mttrly_core::ids::InvestigationId;
use mttrly_core::tools::investigations::{Investigation, InvestigationStatus, StartInvestigationInput};
use mttrly_core::{ErrorCode, MttrlyError};

use super::{client_of, idle_ms};
use crate::db::accounts::TokenOwner;
use crate::db::investigations::InvestigationRow;
use crate::db::{now_ms, timestamp};
use crate::state::Central;

/// Opens an investigation of the server for the caller's human and client, or resumes the one
/// they already have open there (`resumed: true`, its title and alert kept, its activity
/// renewed). The title is redacted before it is stored: it is the assistant's text.
pub async fn start(
    central: &Arc<Central>,
    caller: &TokenOwner,
    input: StartInvestigationInput,
) -> Result<Investigation, MttrlyError> {
    let server = crate::servers::find(central, caller, &input.server_id).await?;
    let account = central.db.account(&caller.account_id);
    if let Some(alert) = &input.alert_id
        && !account.investigations().alert_of_server(alert, &server.id).await?
    {
        return Err(MttrlyError::new(
            ErrorCode::ValidationError,
            format!("alert {alert} is not an alert of server {} in this account", server.name),
        )
        .with_detail("alert_id", alert.as_str())
        .with_detail("server_id", server.id.as_str()));
    }
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
