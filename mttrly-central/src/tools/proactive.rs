//! The proactive tools: the calling human's morning brief, and acknowledging an event.

use std::sync::Arc;

use mttrly_core::audit::{AuditActor, AuditEvent, AuditKind, AuditOutcome};
use mttrly_core::tools::proactive::{
    AcknowledgeProactiveEventInput, GetMorningBriefInput, MorningBrief, ProactiveEventAck,
};
use mttrly_core::{ErrorCode, MttrlyError, Source};

use crate::db::accounts::TokenOwner;
use crate::db::now_ms;
use crate::db::proactive::{AckOutcome, Acker};
use crate::proactive::{FIRST_BRIEF_WINDOW_MS, brief};
use crate::state::Central;

/// The brief of the caller's account from `since` (the previous answer's `next_since`), or of the
/// last 24 hours. Pure: it moves no cursor, so calling it twice answers the same.
pub(crate) async fn morning_brief(
    central: &Central,
    caller: &TokenOwner,
    input: GetMorningBriefInput,
) -> Result<MorningBrief, MttrlyError> {
    let since = input.since.map(jiff::Timestamp::as_millisecond);
    let rows = central.db.account(&caller.account_id).proactive().brief(since, now_ms(), FIRST_BRIEF_WINDOW_MS).await?;
    Ok(brief::assemble(rows))
}

/// Records the caller's verdict; another tenant's event id answers exactly like an unknown one.
pub(crate) async fn acknowledge(
    central: &Arc<Central>,
    caller: &TokenOwner,
    source: Source,
    input: AcknowledgeProactiveEventInput,
) -> Result<ProactiveEventAck, MttrlyError> {
    let not_found = || {
        MttrlyError::new(ErrorCode::NotFound, "no such proactive event")
            .with_detail("event_id", input.event_id.as_str())
    };
    // The principal that acted: a person's verdict counts; an assistant's is kept as its
    // suggestion (and the audit row below and the tool call's own name the assistant).
    let by = Acker { principal: caller.principal.clone(), via: source };
    let note = input.note.as_ref().map(|n| mttrly_core::redactor::redact(n.as_str()).text.into_owned());
    let proactive = central.db.account(&caller.account_id).proactive();
    let now = now_ms();
    let ack = match proactive.acknowledge(&input.event_id, input.verdict, note, by, now).await? {
        AckOutcome::NotFound => return Err(not_found()),
        AckOutcome::Conflict(existing) => {
            return Err(MttrlyError::new(
                ErrorCode::ValidationError,
                format!(
                    "the event was already acknowledged as {}; the first acknowledgement stands",
                    existing.as_str()
                ),
            )
            .with_detail("event_id", input.event_id.as_str())
            .with_detail("verdict", existing.as_str()));
        }
        AckOutcome::Done(ack) => ack,
    };
    if ack.counted && ack.detector_muted && ack.muted_until.is_some_and(|u| u.as_millisecond() > now) {
        // The budget just muted (or still mutes) this key: say so in the audit log, apart from
        // the tool call, so a reader sees why events stop being announced.
        if let Some(event) = proactive.get(&input.event_id).await? {
            central.audit(crate::events::Recorded::new(
                AuditEvent {
                    at: jiff::Timestamp::now(),
                    account_id: caller.account_id.clone(),
                    server_id: Some(event.server_id.clone()),
                    actor: AuditActor::from(caller.principal.clone()),
                    source,
                    kind: AuditKind::ApiCall,
                    subject: "proactive_budget_muted".to_owned(),
                    parameters: serde_json::json!({
                        "event_id": event.event_id.as_str(),
                        "detector": event.detector,
                        "metric": event.metric,
                        "muted_until": ack.muted_until.map(|u| u.to_string()),
                        "reason": ack.mute_reason,
                    }),
                    outcome: AuditOutcome::Ok,
                    duration_ms: None,
                },
                crate::events::Payload::ApiCall,
            ));
        }
    }
    Ok(ack)
}
