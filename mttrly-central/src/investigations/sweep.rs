//! The sweep: investigations idle past `investigation_idle_minutes` close (their bypass revoked
//! with them), and bypasses past their time (or requests nobody granted in time) are marked
//! expired. Dispatch never trusts a stored `active` alone (slots are taken only while
//! `expires_at` is in the future), so the sweep is bookkeeping and audit, not enforcement.

use mttrly_core::audit::{AuditActor, AuditEvent, AuditKind, AuditOutcome};
use mttrly_core::{MttrlyError, Source};

use crate::db::investigations::Swept;
use crate::db::now_ms;
use crate::events::{InvestigationEnd, Payload, Recorded};
use crate::state::Central;

/// Runs one sweep at now; returns how many investigations and bypasses it ended.
pub async fn sweep(central: &Central) -> Result<usize, MttrlyError> {
    let swept = central.db.maintenance().sweep_investigations(now_ms(), super::idle_ms(central)).await?;
    for item in &swept {
        let (account_id, server_id, subject, parameters, payload) = match item {
            Swept::Closed(row, revoked) => (
                row.account_id.clone(),
                row.server_id.clone(),
                "CloseInvestigation",
                serde_json::json!({
                    "investigation_id": row.id.as_str(),
                    "reason": "idle",
                    "bypass_id": revoked.as_ref().map(mttrly_core::ids::BypassId::as_str),
                }),
                Payload::InvestigationClosed {
                    investigation: row.into(),
                    end: InvestigationEnd::Idle,
                    revoked_bypass: revoked.clone(),
                },
            ),
            Swept::Expired(bypass) => (
                bypass.account_id.clone(),
                bypass.server_id.clone(),
                "ExpireInvestigationBypass",
                serde_json::json!({
                    "investigation_id": bypass.investigation_id.as_str(),
                    "bypass_id": bypass.id.as_str(),
                    "actions_used": bypass.actions_used,
                }),
                Payload::ApiCall,
            ),
        };
        let event = AuditEvent {
            at: jiff::Timestamp::now(),
            account_id,
            server_id: Some(server_id),
            actor: AuditActor::System,
            source: Source::Api,
            kind: AuditKind::ApiCall,
            subject: subject.to_owned(),
            parameters,
            outcome: AuditOutcome::Ok,
            duration_ms: None,
        };
        central.audit(Recorded::new(event, payload));
    }
    Ok(swept.len())
}
