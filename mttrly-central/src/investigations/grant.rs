//! A human grants a pending bypass with a fresh TOTP code.
//!
//! Everything that can refuse the grant is checked before the code is (so a refused grant never
//! spends a code or counts toward a lockout): the grant is still pending and its investigation
//! open; the environment allows bypasses; the environment's approval rule for each covered
//! tool admits this person as a decider through this channel (role, named approvers, channels,
//! and four eyes: under `requester_may_approve = false` the human whose assistant asked cannot
//! grant it; there is no admin override) and asks for no quorum beyond one; the granted scope
//! narrows the request. Then the code (`second_factor::verify_from`: replay- and lockout-safe),
//! then the pending → active move, conditional in one transaction. Every attempt is audited,
//! refused ones with their code.

use std::sync::Arc;

use mttrly_core::action::ActionType;
use mttrly_core::approval::{Decider, check_approval};
use mttrly_core::audit::{AuditEvent, AuditKind, AuditOutcome};
use mttrly_core::ids::BypassId;
use mttrly_core::tools::investigations::{BypassState, BypassStatus, BypassTool, GrantScope, InvestigationStatus};
use mttrly_core::{ErrorCode, MttrlyError, Principal, Role, Source};

use super::bypass::{forbidden_here, state_of};
use super::closed;
use crate::db::accounts::TokenOwner;
use crate::db::investigations::{BypassRow, Granted};
use crate::db::{now_ms, timestamp};
use crate::events::{Payload, Recorded};
use crate::state::Central;

/// What a human grants: the bypass, the scope they confirm (`None`: exactly as asked), and the
/// code they typed just now.
#[derive(Debug, Clone)]
pub struct GrantRequest {
    /// The pending bypass.
    pub bypass_id: BypassId,
    /// The narrowed scope, or `None` for the request as it stands.
    pub scope: Option<GrantScope>,
    /// The TOTP (or recovery) code typed by the granting human.
    pub code: String,
}

fn forbidden(message: impl Into<String>) -> MttrlyError {
    MttrlyError::new(ErrorCode::Forbidden, message)
}

/// `NOT_FOUND` for a bypass that is not this account's (or does not exist).
fn bypass_not_found(id: &BypassId) -> MttrlyError {
    MttrlyError::new(ErrorCode::NotFound, format!("no bypass {id} in this account"))
        .with_detail("bypass_id", id.as_str())
}

/// The action type whose approval rule governs a bypass of `tool`.
const fn action_type(tool: BypassTool) -> ActionType {
    match tool {
        BypassTool::ExecuteCommand => ActionType::Command,
        BypassTool::ExecuteScript => ActionType::Script,
    }
}

/// Grants `request.bypass_id` as `caller` (a human) through `channel`; returns the bypass's state.
pub async fn grant(
    central: &Arc<Central>,
    caller: &TokenOwner,
    request: GrantRequest,
    channel: Source,
) -> Result<BypassState, MttrlyError> {
    let account = central.db.account(&caller.account_id).investigations();
    let bypass = account.bypass(&request.bypass_id).await?.ok_or_else(|| bypass_not_found(&request.bypass_id))?;
    let result = decide(central, caller, &bypass, &request, channel).await;
    audit(central, caller, &bypass, request.scope.as_ref(), channel, &result);
    let row = result?;
    let investigation =
        account.get(&row.investigation_id).await?.ok_or_else(|| bypass_not_found(&request.bypass_id))?;
    Ok(state_of(central, &investigation, Some(&row), now_ms()))
}

async fn decide(
    central: &Central,
    caller: &TokenOwner,
    bypass: &BypassRow,
    request: &GrantRequest,
    channel: Source,
) -> Result<BypassRow, MttrlyError> {
    let Principal::Human { user_id, name } = &caller.principal else {
        return Err(forbidden(
            "an assistant can never grant a bypass; a human grants it with `mttrly-cli investigations grant ID` and their own TOTP code",
        ));
    };
    let scope = request.scope.clone().unwrap_or_else(|| bypass.scope.clone());
    precheck(central, caller, bypass, &scope, channel).await?;
    let code = request.code.trim();
    if code.is_empty() {
        return Err(forbidden(format!(
            "granting bypass {} needs a fresh TOTP code from you: run `mttrly-cli investigations grant {}`, which asks for it. \
             Never give a code to an assistant",
            bypass.id, bypass.id
        ))
        .with_detail("bypass_id", bypass.id.as_str()));
    }
    crate::second_factor::verify_from(central, &caller.account_id, user_id, code, channel).await?;
    let investigations = central.db.account(&caller.account_id).investigations();
    match investigations.grant(&bypass.id, scope, (user_id.clone(), name.clone()), now_ms()).await? {
        Granted::Active(row) => Ok(*row),
        Granted::NotPending => Err(MttrlyError::new(
            ErrorCode::ValidationError,
            format!(
                "bypass {} stopped waiting for a grant meanwhile (revoked, lapsed or its investigation closed)",
                bypass.id
            ),
        )
        .with_detail("bypass_id", bypass.id.as_str())),
    }
}

/// `caller` as a decider through `channel`: the same test an approval makes (a read-only or
/// narrowly scoped token decides nothing).
fn decider_of<'a>(caller: &'a TokenOwner, channel: Source, channels: &'a [Source]) -> Decider<'a> {
    Decider {
        principal: &caller.principal,
        is_admin: caller.role == Role::Admin,
        may_decide: caller.role != Role::Viewer,
        token_may_decide: caller.scope.check(mttrly_core::ToolId::ApproveAction.spec()).is_ok(),
        channel,
        existing_channels: channels,
    }
}

/// Whether `decider` may grant `bypass` with `scope` on a server of `environment`: the
/// environment allows bypasses, and the approval rule of every covered tool admits this decider
/// (role, named approvers, channels, four eyes against the requester) with a quorum of one. The
/// second factor is not part of it: it is asked for at the grant. One check for every path that
/// grants (CLI, dashboard, chat) and for choosing whom a chat message asks.
pub fn may_grant(
    approvals: &mttrly_core::approval::config::ApprovalPolicy,
    decider: &Decider<'_>,
    bypass: &BypassRow,
    scope: &GrantScope,
    environment: mttrly_core::Environment,
) -> Result<(), MttrlyError> {
    if !approvals.bypass_allowed(environment) {
        return Err(forbidden_here(environment));
    }
    for tool in scope.tools.iter() {
        let rule = approvals.rule_for(environment, action_type(tool), None);
        check_approval(&rule, &bypass.requested_by, decider, &[]).map_err(|e| {
            MttrlyError::new(
                e.code(),
                format!("{} (the approval rule of {} on {} servers)", e.message(), tool.as_str(), environment),
            )
            .with_detail("bypass_id", bypass.id.as_str())
        })?;
        if rule.quorum > 1 {
            return Err(forbidden(format!(
                "{} on {} servers needs {} approvers per action; a bypass is granted by one person, so it is not available there",
                tool.as_str(),
                environment,
                rule.quorum
            )));
        }
    }
    Ok(())
}

/// Everything a grant of `bypass` by `caller` through `channel` checks before the code: a human,
/// the bypass pending and its investigation open, and [`may_grant`] for the request as it stands.
/// Chat asks for a code only once this passes, so a person who may not grant is told so at the
/// tap and no code is typed for nothing. Nothing is recorded.
pub async fn check_grantable(
    central: &Central,
    caller: &TokenOwner,
    bypass: &BypassRow,
    channel: Source,
) -> Result<(), MttrlyError> {
    precheck(central, caller, bypass, &bypass.scope, channel).await
}

/// What a grant of `bypass` with `scope` checks before any code is looked at (so a refused grant
/// never spends a code): a human; the investigation open; the bypass pending; the environment
/// allowing bypasses; `scope` within the request; [`may_grant`].
async fn precheck(
    central: &Central,
    caller: &TokenOwner,
    bypass: &BypassRow,
    scope: &GrantScope,
    channel: Source,
) -> Result<(), MttrlyError> {
    if !matches!(caller.principal, Principal::Human { .. }) {
        return Err(forbidden("an assistant can never grant a bypass"));
    }
    let investigation = central
        .db
        .account(&caller.account_id)
        .investigations()
        .get(&bypass.investigation_id)
        .await?
        .ok_or_else(|| bypass_not_found(&bypass.id))?;
    if investigation.status == InvestigationStatus::Closed {
        return Err(closed(&investigation));
    }
    let status = bypass.status_at(now_ms());
    if status != BypassStatus::Pending {
        return Err(not_pending(bypass, status));
    }
    let server = crate::servers::find(central, caller, &bypass.server_id).await?;
    if !central.approvals.bypass_allowed(server.environment) {
        return Err(forbidden_here(server.environment));
    }
    if let Err(wider) = scope.narrows(&bypass.scope) {
        return Err(MttrlyError::new(
            ErrorCode::ValidationError,
            format!("a grant may narrow the request, never widen it: {}; nothing was changed", wider.join("; ")),
        )
        .with_detail("bypass_id", bypass.id.as_str())
        .with_detail("widenings", wider));
    }
    may_grant(
        &central.approvals,
        &decider_of(caller, channel, &central.decision_channels),
        bypass,
        scope,
        server.environment,
    )?;
    // As for an action's approval: under a rule where the requester may not decide, a granter
    // the requester's human added or re-invited after asking is the requester again.
    let requester = bypass.requested_by.accountable_user();
    let granter = caller.principal.accountable_user();
    let strict = scope
        .tools
        .iter()
        .map(|tool| central.approvals.rule_for(server.environment, action_type(tool), None))
        .find(|rule| !rule.requester_may_approve);
    if let Some(rule) = strict
        && requester != granter
    {
        central.audit.flush().await;
        let found =
            crate::actions::introduced::by_requester(central, &caller.account_id, requester, granter, now_ms()).await?;
        if let Some(found) = found {
            crate::actions::introduced::refuse_if_after_request(&rule, &found, bypass.requested_at, caller)?;
        }
    }
    Ok(())
}

fn not_pending(bypass: &BypassRow, status: BypassStatus) -> MttrlyError {
    let by = match (status, bypass.granted_by_name.as_deref()) {
        (BypassStatus::Active | BypassStatus::Exhausted, Some(name)) => {
            format!(" (granted by {})", mttrly_core::display::text(name))
        }
        _ => String::new(),
    };
    MttrlyError::new(
        ErrorCode::ValidationError,
        format!(
            "bypass {} is {}{by}, not waiting for a grant; a decision was already taken or it lapsed, and nothing was changed",
            bypass.id,
            status.as_str()
        ),
    )
    .with_detail("bypass_id", bypass.id.as_str())
    .with_detail("status", status.as_str())
}

/// What a denial did.
#[derive(Debug, Clone)]
pub struct Denied {
    /// The bypass as it stands now.
    pub state: BypassState,
    /// `false`: it was already revoked (denied before, or revoked by its assistant); nothing
    /// changed. Denying is idempotent.
    pub now: bool,
}

/// Denies the pending bypass `id` as `caller` (a human who may grant it) through `channel`: it
/// is revoked and never becomes active. Idempotent: denying a revoked bypass answers it as it
/// stands. A bypass already granted, or lapsed, is refused (a decision was taken; revoking an
/// active grant is `investigations revoke`). No code is needed: a "no" only takes power away.
/// Audited as a decision on the bypass, refused attempts with their code.
pub async fn deny(
    central: &Arc<Central>,
    caller: &TokenOwner,
    id: &BypassId,
    channel: Source,
) -> Result<Denied, MttrlyError> {
    let investigations = central.db.account(&caller.account_id).investigations();
    let bypass = investigations.bypass(id).await?.ok_or_else(|| bypass_not_found(id))?;
    let result = async {
        if bypass.status == BypassStatus::Revoked {
            return Ok((false, bypass.clone()));
        }
        check_grantable(central, caller, &bypass, channel).await?;
        match investigations.deny(id, now_ms()).await? {
            (true, Some(row)) => Ok((true, row)),
            (_, Some(row)) if row.status == BypassStatus::Revoked => Ok((false, row)),
            (_, Some(row)) => Err(not_pending(&row, row.status_at(now_ms()))),
            (_, None) => Err(bypass_not_found(id)),
        }
    }
    .await;
    let parameters = serde_json::json!({
        "decision": "deny_bypass",
        "investigation_id": bypass.investigation_id.as_str(),
        "already_revoked": result.as_ref().ok().map(|(now, _)| !now),
    });
    record_decision(central, caller, &bypass, channel, parameters, result.as_ref().err());
    let (now, row) = result?;
    let investigation = investigations.get(&row.investigation_id).await?.ok_or_else(|| bypass_not_found(id))?;
    Ok(Denied { state: state_of(central, &investigation, Some(&row), now_ms()), now })
}

/// Records the grant (or the refused attempt) as a decision on the bypass.
fn audit(
    central: &Central,
    caller: &TokenOwner,
    bypass: &BypassRow,
    scope: Option<&GrantScope>,
    channel: Source,
    result: &Result<BypassRow, MttrlyError>,
) {
    let shown = match result {
        Ok(granted) => &granted.scope,
        Err(_) => scope.unwrap_or(&bypass.scope),
    };
    let mut parameters = serde_json::json!({
        "decision": "grant_bypass",
        "investigation_id": bypass.investigation_id.as_str(),
        "tools": shown.tools,
        "patterns": shown.patterns,
        "duration_minutes": shown.minutes,
        "max_actions": shown.max_actions,
        "narrowed": *shown != bypass.scope,
    });
    if let Ok(granted) = result {
        parameters["second_factor"] = "totp".into();
        parameters["expires_at"] = timestamp(granted.expires_at).to_string().into();
    }
    record_decision(central, caller, bypass, channel, parameters, result.as_ref().err());
}

/// Audits `caller`'s decision on `bypass` (a grant or a denial, refused with `error` or not).
fn record_decision(
    central: &Central,
    caller: &TokenOwner,
    bypass: &BypassRow,
    channel: Source,
    parameters: serde_json::Value,
    error: Option<&MttrlyError>,
) {
    let event = AuditEvent {
        at: jiff::Timestamp::now(),
        account_id: caller.account_id.clone(),
        server_id: Some(bypass.server_id.clone()),
        actor: caller.principal.clone().into(),
        source: channel,
        kind: AuditKind::ApprovalDecision,
        subject: bypass.id.to_string(),
        parameters,
        outcome: error.map_or(AuditOutcome::Ok, |e| AuditOutcome::Error { code: e.code() }),
        duration_ms: None,
    };
    central.audit(Recorded::new(event, Payload::ApiCall));
}
