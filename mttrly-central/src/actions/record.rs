//! What the engine records in the audit log on its own account: decisions, and the moves central
//! makes without a human (expiry, crash recovery, fail closed).

use mttrly_core::audit::{AuditActor, AuditEvent, AuditKind, AuditOutcome};
use mttrly_core::{ErrorCode, MttrlyError, Principal, Source};

use crate::db::actions::ActionRow;
use crate::events::{self, Payload, Recorded};
use crate::state::Central;

pub(super) fn audit_decision(
    central: &Central,
    action: &ActionRow,
    who: &Principal,
    channel: Source,
    decision: events::Decision,
    reason: Option<&str>,
    result: &Result<(), MttrlyError>,
) {
    let what = decision.as_str();
    let event = AuditEvent {
        at: jiff::Timestamp::now(),
        account_id: action.account_id.clone(),
        server_id: Some(action.server_id.clone()),
        actor: who.clone().into(),
        source: channel,
        kind: AuditKind::ApprovalDecision,
        subject: action.id.to_string(),
        parameters: match reason {
            Some(reason) => {
                serde_json::json!({ "decision": what, "content_sha256": action.content_sha256, "reason": reason })
            }
            None => serde_json::json!({ "decision": what, "content_sha256": action.content_sha256 }),
        },
        outcome: match result {
            Ok(()) => AuditOutcome::Ok,
            Err(e) => AuditOutcome::Error { code: e.code() },
        },
        duration_ms: None,
    };
    central.audit(Recorded::new(event, Payload::ActionDecided { action: action.into(), decision }));
}

/// An audit event central records on its own about an action (expiry, crash recovery, fail closed).
pub(super) fn system_event(
    action: &ActionRow,
    kind: AuditKind,
    parameters: serde_json::Value,
    code: ErrorCode,
) -> AuditEvent {
    AuditEvent {
        at: jiff::Timestamp::now(),
        account_id: action.account_id.clone(),
        server_id: Some(action.server_id.clone()),
        actor: AuditActor::System,
        source: Source::Api,
        kind,
        subject: action.id.to_string(),
        parameters,
        outcome: AuditOutcome::Error { code },
        duration_ms: None,
    }
}
