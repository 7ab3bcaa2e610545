//! The assistant's side of a bypass: ask for one (`acquire`), read it without consuming anything
//! (`get_bypass`), give it up (`revoke`, idempotent), and the state all three answer with.

use std::sync::Arc;

use mttrly_core::ids::BypassId;
use mttrly_core::tools::investigations::{
    AcquireInvestigationBypassInput, BypassState, BypassStatus, GetInvestigationBypassInput, GrantInstructions,
    GrantScope, InvestigationStatus, RevokeInvestigationBypassInput,
};
use mttrly_core::{ErrorCode, MttrlyError};

use super::{PENDING_GRANT_MS, closed, own, page_path};
use crate::db::accounts::TokenOwner;
use crate::db::investigations::{BypassRow, InvestigationRow, Requested};
use crate::db::{now_ms, timestamp};
use crate::state::Central;

/// `FORBIDDEN` when the environment's rules forbid bypasses, naming the key that allows them.
pub(super) fn forbidden_here(environment: mttrly_core::Environment) -> MttrlyError {
    MttrlyError::new(
        ErrorCode::Forbidden,
        format!(
            "investigation bypasses are forbidden on {environment} servers: every command there waits for approval \
             (the owner allows them with `[approvals.{environment}] bypass = \"allowed\"` in central's config)"
        ),
    )
    .with_detail("environment", environment.as_str())
}

/// The state of `investigation`'s latest bypass at `now`, with the way to grant it while pending.
pub fn state_of(
    central: &Central,
    investigation: &InvestigationRow,
    latest: Option<&BypassRow>,
    now: i64,
) -> BypassState {
    let Some(b) = latest else {
        return BypassState {
            investigation_id: investigation.id.clone(),
            bypass_id: None,
            status: BypassStatus::None,
            server_id: investigation.server_id.clone(),
            tools: Vec::new(),
            patterns: Vec::new(),
            reason: None,
            granted_by: None,
            granted_at: None,
            expires_at: None,
            duration_minutes: 0,
            max_actions: 0,
            actions_used: 0,
            remaining_actions: 0,
            grant: None,
            next_step: "No bypass was asked for: exec calls wait for approval one by one. Ask for one with \
                        mttrly_acquire_investigation_bypass if a human agrees."
                .to_owned(),
        };
    };
    let status = b.status_at(now);
    let remaining = b.remaining_at(now);
    let grant = (status == BypassStatus::Pending).then(|| GrantInstructions {
        cli_command: format!("mttrly-cli investigations grant {}", b.id),
        dashboard_url: central.site_url.get().map(|base| format!("{base}{}", page_path(&investigation.id))),
    });
    let next_step = match status {
        BypassStatus::Pending => format!(
            "A human must grant it with a fresh TOTP code, outside this conversation: `mttrly-cli investigations grant {}`{} \
             (it lapses at {}). Never ask them for the code. Check with mttrly_get_investigation_bypass.",
            b.id,
            grant
                .as_ref()
                .and_then(|g| g.dashboard_url.as_ref())
                .map(|url| format!(" or the page {url}"))
                .unwrap_or_default(),
            timestamp(b.expires_at)
        ),
        BypassStatus::Active => format!(
            "Active until {}: {remaining} more matching exec calls with investigation_id {} run at once on this server; \
             anything else waits for approval.",
            timestamp(b.expires_at),
            investigation.id
        ),
        BypassStatus::Exhausted | BypassStatus::Expired | BypassStatus::Revoked => format!(
            "The bypass is {}: exec calls wait for approval one by one.{}",
            status.as_str(),
            if investigation.status == InvestigationStatus::Open {
                " Ask for a new one with mttrly_acquire_investigation_bypass if a human agrees."
            } else {
                ""
            }
        ),
        BypassStatus::None => String::new(),
    };
    BypassState {
        investigation_id: investigation.id.clone(),
        bypass_id: Some(b.id.clone()),
        status,
        server_id: b.server_id.clone(),
        tools: b.scope.tools.iter().collect(),
        patterns: b.scope.patterns.clone(),
        reason: b.reason.clone(),
        granted_by: b.granter(),
        granted_at: b.granted_at.map(timestamp),
        expires_at: Some(timestamp(b.expires_at)),
        duration_minutes: b.scope.minutes,
        max_actions: b.scope.max_actions,
        actions_used: b.actions_used,
        remaining_actions: remaining,
        grant,
        next_step,
    }
}

/// Asks for a bypass on the caller's open investigation: stored pending (a compare-and-swap on
/// the investigation's version, `BYPASS_ACQUIRE_FAILED` when it moved meanwhile) and answered
/// with how a human grants it. `BYPASS_ALREADY_ACTIVE` while one is pending or active;
/// `INVESTIGATION_CLOSED` for a closed investigation; `FORBIDDEN` where the rules forbid it.
pub async fn acquire(
    central: &Arc<Central>,
    caller: &TokenOwner,
    input: AcquireInvestigationBypassInput,
) -> Result<BypassState, MttrlyError> {
    crate::auth::refuse_viewer(caller, "ask for bypasses")?;
    let investigation = own(central, caller, &input.investigation_id).await?;
    if investigation.status == InvestigationStatus::Closed {
        return Err(closed(&investigation));
    }
    let server = crate::servers::find(central, caller, &investigation.server_id).await?;
    if !central.approvals.bypass_allowed(server.environment) {
        return Err(forbidden_here(server.environment));
    }
    let cap = central.config.bypass_max_minutes;
    let minutes = input.duration_minutes.get();
    if minutes > cap {
        return Err(MttrlyError::new(
            ErrorCode::ValidationError,
            format!("duration_minutes: {minutes} is more than this central allows ({cap}, `bypass_max_minutes`)"),
        )
        .with_detail("field", "duration_minutes")
        .with_detail("max", cap));
    }
    let now = now_ms();
    let row = BypassRow {
        id: BypassId::generate(),
        account_id: caller.account_id.clone(),
        investigation_id: investigation.id.clone(),
        server_id: investigation.server_id.clone(),
        scope: GrantScope {
            tools: input.tools,
            patterns: input.patterns.as_slice().to_vec(),
            minutes,
            max_actions: input.max_actions.get(),
        },
        status: BypassStatus::Pending,
        requested_at: now,
        requested_by: caller.principal.clone(),
        reason: input.reason.map(|r| mttrly_core::redactor::redact(r.as_str()).text.into_owned()),
        granted_by: None,
        granted_by_name: None,
        granted_at: None,
        expires_at: now.saturating_add(PENDING_GRANT_MS),
        actions_used: 0,
        revoked_at: None,
    };
    let investigations = central.db.account(&caller.account_id).investigations();
    match investigations.request_bypass(row.clone(), investigation.version, now).await? {
        Requested::Stored => {
            // The people who may grant it and linked a chat account are asked there too (on a
            // task of its own: a chat service never holds up the assistant).
            if let Some(chat) = &central.chat {
                chat.spawn_announce_bypass(row.account_id.clone(), row.id.clone());
            }
            Ok(state_of(central, &investigation, Some(&row), now))
        }
        Requested::Closed => Err(closed(&investigation)),
        Requested::Missing => Err(super::not_found(&investigation.id)),
        Requested::AlreadyLive(live) => Err(MttrlyError::new(
            ErrorCode::BypassAlreadyActive,
            format!(
                "investigation {} already has a {} bypass ({}); use it, or revoke it with mttrly_revoke_investigation_bypass first",
                investigation.id,
                live.status_at(now).as_str(),
                live.id
            ),
        )
        .with_detail("investigation_id", investigation.id.as_str())
        .with_detail("bypass_id", live.id.as_str())
        .with_detail("status", live.status_at(now).as_str())),
        Requested::Raced => Err(MttrlyError::new(
            ErrorCode::BypassAcquireFailed,
            format!("investigation {} changed while the bypass was being requested; read it again and retry", investigation.id),
        )
        .with_detail("investigation_id", investigation.id.as_str())),
    }
}

/// The bypass state of the caller's investigation. Consumes nothing (it renews the
/// investigation's activity: the assistant is still at work).
pub async fn get_bypass(
    central: &Arc<Central>,
    caller: &TokenOwner,
    input: GetInvestigationBypassInput,
) -> Result<BypassState, MttrlyError> {
    let investigation = own(central, caller, &input.investigation_id).await?;
    let investigations = central.db.account(&caller.account_id).investigations();
    let now = now_ms();
    investigations.touch(&investigation.id, now).await?;
    let latest = investigations.latest_bypass(&investigation.id).await?;
    Ok(state_of(central, &investigation, latest.as_ref(), now))
}

/// Revokes the bypass of the caller's investigation at once. Idempotent: revoking a revoked (or
/// expired, exhausted, absent) bypass answers its current state.
pub async fn revoke(
    central: &Arc<Central>,
    caller: &TokenOwner,
    input: RevokeInvestigationBypassInput,
) -> Result<BypassState, MttrlyError> {
    let investigation = own(central, caller, &input.investigation_id).await?;
    let now = now_ms();
    let latest = central.db.account(&caller.account_id).investigations().revoke(&investigation.id, now).await?;
    // A request withdrawn while people were asked in chat: their messages say so (and lose their
    // buttons) rather than wait for a tap to find out.
    if let (Some(chat), Some(latest)) = (&central.chat, &latest) {
        chat.spawn_follow_up_bypass(caller.account_id.clone(), latest.id.clone());
    }
    Ok(state_of(central, &investigation, latest.as_ref(), now))
}
