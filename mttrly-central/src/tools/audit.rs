//! `mttrly_get_audit_log`.

use mttrly_core::MttrlyError;
use mttrly_core::tools::actions::{AuditLogPage, GetAuditLogInput};

use crate::db::accounts::TokenOwner;
use crate::db::audit::AuditFilter;
use crate::state::Central;

pub(crate) async fn audit_log(
    central: &Central,
    caller: &TokenOwner,
    input: GetAuditLogInput,
) -> Result<AuditLogPage, MttrlyError> {
    if let Some(server) = &input.server_id {
        // Another account's server is SERVER_NOT_FOUND, never an empty page that confirms it exists.
        crate::servers::find(central, caller, server).await?;
    }
    // Rows written moments ago (this very call's predecessors) are visible.
    central.audit.flush().await;
    let limit = input.limit.get();
    let filter = AuditFilter {
        server_id: input.server_id,
        subject: input.action_id.map(|a| a.to_string()),
        before_seq: input.before_seq,
        limit,
        ..AuditFilter::default()
    };
    let entries = central.db.account(&caller.account_id).audit().list(&filter).await?;
    let next_before_seq = if entries.len() == usize::try_from(limit).unwrap_or(usize::MAX) {
        entries.last().map(|e| e.seq)
    } else {
        None
    };
    Ok(AuditLogPage { entries, next_before_seq, retention_days: caller.plan.limits().log_retention_days })
}
