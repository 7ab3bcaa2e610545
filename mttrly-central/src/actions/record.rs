//! What the engine records in the audit log on its own account: decisions, and the moves central
//! makes without a human (expiry, crash recovery, fail closed).

use mttrly_core::audit::{AuditActor, AuditEvent, AuditKind, AuditOutcome};
use mttrly_core::{ErrorCode, MttrlyError, Principal, Source};

use crate::db::actions::ActionRow;
use crate::events::{self, Payload, Recorded};
use crate::state::Central;

/// Records a decision (or a refused attempt) on `action`. `facts` are what the decision proved
/// beyond the decision itself (a verified second factor, a solo approval), added to the
/// parameters so the audit log says how an approval was made, not only that it was.
#[allow(clippy::too_many_arguments)] // every field of the row is a fact of this one decision
pub(super) fn audit_decision(
    central: &Central,
    action: &ActionRow,
    who: &Principal,
    channel: Source,
    decision: events::Decision,
    reason: Option<&str>,
    facts: &[(&'static str, serde_json::Value)],
    result: &Result<(), MttrlyError>,
) {
    let what = decision.as_str();
    let mut parameters = serde_json::Map::new();
    parameters.insert("decision".into(), what.into());
    parameters.insert("content_sha256".into(), action.content_sha256.clone().into());
    if let Some(reason) = reason {
        parameters.insert("reason".into(), reason.into());
    }
    for (key, value) in facts {
        parameters.insert((*key).into(), value.clone());
    }
    let event = AuditEvent {
        at: jiff::Timestamp::now(),
        account_id: action.account_id.clone(),
        server_id: Some(action.server_id.clone()),
        actor: who.clone().into(),
        source: channel,
        kind: AuditKind::ApprovalDecision,
        subject: action.id.to_string(),
        parameters: serde_json::Value::Object(parameters),
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
