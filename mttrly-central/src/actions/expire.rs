//! The expiry sweep: pending actions whose time ran out become `expired`, each audited.

use mttrly_core::audit::AuditKind;
use mttrly_core::{ErrorCode, MttrlyError};

use super::record::system_event;
use crate::db::now_ms;
use crate::events::{Payload, Recorded};
use crate::state::Central;

/// Expires due pending actions (called every second).
pub async fn expire(central: &Central) -> Result<(), MttrlyError> {
    let expired = central.db.maintenance().expire_due_actions(now_ms()).await?;
    for a in expired {
        central.audit(Recorded::new(
            system_event(
                &a,
                AuditKind::ApprovalDecision,
                serde_json::json!({ "decision": "expired" }),
                ErrorCode::ActionExpired,
            ),
            Payload::ActionExpired { action: (&a).into() },
        ));
    }
    Ok(())
}
