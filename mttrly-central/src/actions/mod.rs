//! The action engine: create, decide, execute at most once, expire, recover.
//!
//! An action moves through the core state machine, one conditional SQLite transaction per move.
//! `approved → running` is committed *before* anything is sent, so a crash can only lose an
//! outcome, never repeat an execution: on restart, actions left `running` become `failed`
//! ("outcome unknown") and are never re-sent. Humans decide; an assistant never can.

pub mod execute;

use std::sync::Arc;
use std::time::Duration;

use mttrly_core::action::{ActionContent, ActionEvent, ActionState};
use mttrly_core::approval::{ApprovalEffect, ApprovalRule, Decider, PriorApproval, check_approval, check_decider};
use mttrly_core::audit::{AuditActor, AuditEvent, AuditKind, AuditOutcome};
use mttrly_core::ids::{ActionId, ServerId};
use mttrly_core::tools::actions::{
    ActionSubmission, ActionView, Decision, ExecutionResult, PendingAction, PendingActionList,
};
use mttrly_core::{ErrorCode, MttrlyError, Principal, Source};

use crate::db::accounts::{Role, TokenOwner};
use crate::db::actions::ActionRow;
use crate::db::servers::ServerRow;
use crate::db::{self, now_ms, timestamp};
use crate::events::{self, Payload, Recorded};
use crate::state::Central;

/// A request for a new action.
#[derive(Debug, Clone)]
pub struct NewAction {
    /// The target server (already checked to belong to the caller's account).
    pub server: ServerRow,
    /// Exactly what runs.
    pub content: ActionContent,
    /// One line for the approver, written by central from the content (never the caller's words).
    pub description: String,
    /// The requester's reason, kept apart from the description: shown last and labelled.
    pub reason: Option<String>,
    /// Whether it may run at once without approval (read-only by policy).
    pub run_at_once: bool,
    /// Bytes the content names by hash (a file write's new content), stored with the action and
    /// sent to the agent, which checks them against the approved hash.
    pub payload: Option<Vec<u8>>,
}

fn not_found(id: &ActionId) -> MttrlyError {
    MttrlyError::new(ErrorCode::ActionNotFound, format!("no action {id} in this account"))
        .with_detail("action_id", id.as_str())
}

/// The approval rule for an action.
pub fn rule_for(central: &Central, action: &ActionRow) -> ApprovalRule {
    let mut rule = ApprovalRule::default_for(action.environment);
    rule.ttl = central.config.action_ttl();
    rule
}

/// The human channels this central offers for decisions. Today only the CLI (the gRPC
/// `ActionService` with a human's token); the dashboard and chat add themselves here when they
/// exist, so refusals and instructions never point to a channel nobody can use.
pub const DECISION_CHANNELS: &[Source] = &[Source::Cli];

/// The channels that can decide `action` on this central, in the rule's order (empty: nobody can).
pub fn usable_channels(central: &Central, action: &ActionRow) -> Vec<Source> {
    rule_for(central, action).usable_channels(DECISION_CHANNELS)
}

fn audit_decision(
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

/// The next step a user should take for an action, in words.
fn next_step(action: &ActionRow) -> String {
    match action.status {
        ActionState::PendingApproval => format!(
            "{} must approve this action before it runs, outside this conversation: `mttrly-cli actions approve {}` (expires at {}).",
            if ApprovalRule::default_for(action.environment).requester_may_approve {
                "A human"
            } else {
                "A human other than the one who asked (four eyes)"
            },
            action.id,
            timestamp(action.expires_at)
        ),
        ActionState::Approved | ActionState::Running => {
            format!("It is running; check with mttrly_get_action_result (action_id {}).", action.id)
        }
        _ => format!("It is {}; see mttrly_get_action_result for details.", action.status),
    }
}

/// Creates an action: pending approval, or approved and started at once when `run_at_once`.
pub async fn submit(
    central: &Arc<Central>,
    caller: &TokenOwner,
    via: Source,
    new: NewAction,
) -> Result<ActionSubmission, MttrlyError> {
    let now = now_ms();
    let rule = ApprovalRule::default_for(new.server.environment);
    let ttl = i64::try_from(central.config.action_ttl().as_millis()).unwrap_or(i64::MAX);
    let action = ActionRow {
        id: ActionId::generate(),
        account_id: caller.account_id.clone(),
        server_id: new.server.id.clone(),
        server_name: new.server.name.clone(),
        environment: new.server.environment,
        content_sha256: new.content.content_sha256(),
        content: new.content,
        description: new.description,
        reason: new.reason,
        requested_by: caller.principal.clone(),
        requested_via: via,
        status: if new.run_at_once { ActionState::Running } else { ActionState::PendingApproval },
        approvals_required: if new.run_at_once { 0 } else { rule.quorum },
        created_at: now,
        updated_at: now,
        expires_at: now.saturating_add(ttl),
        result: None,
    };
    let stored = action.clone();
    let payload = new.payload;
    let cap = central.config.max_pending_actions_per_server;
    let created = central.db.call(move |conn| db::actions::create(conn, &stored, payload.as_deref(), cap, now)).await?;
    if let db::actions::Created::CapReached { pending, first_expiry } = created {
        return Err(pending_cap_reached(&action, pending, cap, first_expiry, now));
    }
    let created = AuditEvent {
        at: jiff::Timestamp::now(),
        account_id: action.account_id.clone(),
        server_id: Some(action.server_id.clone()),
        actor: caller.principal.clone().into(),
        source: via,
        kind: AuditKind::ToolCall,
        subject: action.id.to_string(),
        parameters: serde_json::json!({
            "created": action.content.action_type(),
            "content": action.content,
            "content_sha256": action.content_sha256,
            "status": action.status,
        }),
        outcome: AuditOutcome::Ok,
        duration_ms: None,
    };
    let created = Recorded::new(created, Payload::ActionCreated(Arc::new(action.clone())));
    if action.status == ActionState::PendingApproval {
        prompt_or_fail_closed(central, &action, created).await?;
    } else {
        central.audit(created);
    }
    let mut result = None;
    let mut status = action.status;
    if new.run_at_once {
        let done = execute::run(Arc::clone(central), action.clone()).await;
        status = done.0;
        result = Some(done.1);
    }
    Ok(ActionSubmission {
        action_id: action.id.clone(),
        server_id: action.server_id.clone(),
        action_type: action.content.action_type(),
        status,
        requires_approval: !new.run_at_once,
        description: action.description.clone(),
        expires_at: (status == ActionState::PendingApproval).then(|| timestamp(action.expires_at)),
        result,
        next_step: next_step(&ActionRow { status, ..action }),
    })
}

/// `RATE_LIMITED` for a server that already has `cap` actions waiting: the seed has no quota
/// code, and this is one in kind (retry once a slot frees, when the oldest expires at the latest).
fn pending_cap_reached(action: &ActionRow, pending: u32, cap: u32, first_expiry: Option<i64>, now: i64) -> MttrlyError {
    let retry_ms = first_expiry.map_or(1000, |at| at.saturating_sub(now).max(1000));
    let retry = u64::try_from(retry_ms).unwrap_or(1000).div_ceil(1000);
    tracing::warn!(server = %action.server_id, pending, cap, "refused a new action: too many pending on this server");
    MttrlyError::new(
        ErrorCode::RateLimited,
        format!(
            "server {} already has {pending} actions waiting for a human (the limit is {cap}); \
             decide or cancel some (`mttrly-cli actions list`), or retry when one expires",
            action.server_name
        ),
    )
    .with_detail("scope", "pending_actions_per_server")
    .with_detail("server_id", action.server_id.as_str())
    .with_detail("limit", cap)
    .with_detail("current", pending)
    .with_detail("retry_after_seconds", retry)
}

/// How long past the notifiers' own worst case a submitter waits for its prompt's creation event
/// to be committed and picked up, before it counts the prompt as undelivered.
const PROMPT_QUEUE_SLACK: Duration = Duration::from_secs(30);

/// Records the creation and, once it is durable, has the prompt task deliver the approval prompt
/// (`created` is the creation's audit event); when prompts are required and none could be
/// delivered, fails the action closed and returns `APPROVAL_NOTIFICATION_FAILED` naming it.
async fn prompt_or_fail_closed(
    central: &Arc<Central>,
    action: &ActionRow,
    created: Recorded,
) -> Result<(), MttrlyError> {
    let required = central.config.prompt_required();
    let failures = if central.prompts.is_empty() {
        central.audit(created);
        if !required {
            return Ok(());
        }
        Vec::new()
    } else {
        let ticket = central.prompts.record_and_wait(&central.audit, created, Arc::new(action.clone()));
        let deadline = central.prompts.max_delivery_time() + PROMPT_QUEUE_SLACK;
        let delivery = central.prompts.outcome(ticket, deadline).await;
        if delivery.delivered || !required {
            return Ok(());
        }
        delivery.failures
    };
    let id = action.id.clone();
    central
        .db
        .call(move |conn| {
            db::actions::transition(conn, &id, ActionState::PendingApproval, ActionState::FailedClosed, now_ms(), None)
        })
        .await?;
    let err = MttrlyError::new(
        ErrorCode::ApprovalNotificationFailed,
        format!(
            "no approval prompt could be delivered for action {}; it was failed closed and will not run",
            action.id
        ),
    )
    .with_detail("action_id", action.id.as_str())
    .with_detail("failures", failures);
    central.audit(Recorded::new(
        system_event(
            action,
            AuditKind::ApprovalDecision,
            serde_json::json!({ "decision": events::Decision::FailedClosed.as_str() }),
            ErrorCode::ApprovalNotificationFailed,
        ),
        Payload::ActionDecided { action: action.into(), decision: events::Decision::FailedClosed },
    ));
    Err(err)
}

/// The caller's action.
pub async fn load(central: &Central, caller: &TokenOwner, id: &ActionId) -> Result<ActionRow, MttrlyError> {
    let (account, id2) = (caller.account_id.clone(), id.clone());
    central.db.call(move |conn| db::actions::get(conn, &account, &id2)).await?.ok_or_else(|| not_found(id))
}

/// The full view of the caller's action.
pub async fn view(central: &Central, caller: &TokenOwner, id: &ActionId) -> Result<ActionView, MttrlyError> {
    let action = load(central, caller, id).await?;
    let id2 = id.clone();
    let approvals = central.db.call(move |conn| db::actions::decisions(conn, &id2)).await?;
    Ok(ActionView {
        action_id: action.id,
        server_id: action.server_id,
        action_type: action.content.action_type(),
        status: action.status,
        description: action.description,
        content: action.content,
        reason: action.reason,
        requested_by: action.requested_by,
        approvals_required: action.approvals_required,
        created_at: timestamp(action.created_at),
        updated_at: timestamp(action.updated_at),
        expires_at: (action.status == ActionState::PendingApproval).then(|| timestamp(action.expires_at)),
        approvals,
        result: action.result,
    })
}

/// The caller's pending actions (closest to expiry first).
pub async fn pending(
    central: &Central,
    caller: &TokenOwner,
    server: Option<ServerId>,
) -> Result<PendingActionList, MttrlyError> {
    let account = caller.account_id.clone();
    // One blocking-pool trip for the actions and their approval counts together.
    let (rows, counts) = central
        .db
        .call(move |conn| {
            let rows = db::actions::list(conn, &account, server.as_ref(), Some(ActionState::PendingApproval), 500)?;
            let counts = db::actions::approval_counts(conn, &account)?;
            Ok((rows, counts))
        })
        .await?;
    let now = now_ms();
    let mut actions: Vec<PendingAction> = Vec::new();
    for a in rows.into_iter().filter(|a| a.expires_at > now) {
        let received = counts.get(&a.id).copied().unwrap_or(0);
        actions.push(PendingAction {
            action_id: a.id,
            server_id: a.server_id,
            server_name: a.server_name,
            environment: a.environment,
            action_type: a.content.action_type(),
            description: a.description,
            content: a.content,
            requested_by: a.requested_by,
            created_at: timestamp(a.created_at),
            expires_at: timestamp(a.expires_at),
            approvals_required: a.approvals_required,
            approvals_received: received,
        });
    }
    actions.sort_by_key(|a| a.expires_at);
    Ok(PendingActionList { actions })
}

fn decider(caller: &TokenOwner, channel: Source) -> Decider<'_> {
    Decider {
        principal: &caller.principal,
        is_admin: caller.role == Role::Admin,
        may_decide: caller.role != Role::Viewer,
        // The token's own scope, not the deployment's: a deployment that hides the actions tools
        // from assistants still needs its humans to decide.
        token_may_decide: caller.scope.check(mttrly_core::ToolId::ApproveAction.spec()).is_ok(),
        channel,
        existing_channels: DECISION_CHANNELS,
    }
}

/// Whether `caller` could approve `action` through the CLI right now, or why not: what
/// `actions show` tells the human before they try. Checks exactly what an approval checks,
/// without recording anything.
pub async fn approval_check(central: &Central, caller: &TokenOwner, action: &ActionRow) -> Result<(), MttrlyError> {
    if action.status == ActionState::PendingApproval && action.expires_at <= now_ms() {
        return ActionState::Expired.apply(ActionEvent::Approve).map(|_| ());
    }
    action.status.apply(ActionEvent::Approve)?;
    let prior = prior_approvals(central, action).await?;
    check_approval(&rule_for(central, action), &action.requested_by, &decider(caller, Source::Cli), &prior).map(|_| ())
}

/// The approvals already recorded for `action`, each as the user it counts against.
async fn prior_approvals(central: &Central, action: &ActionRow) -> Result<Vec<PriorApproval>, MttrlyError> {
    let id = action.id.clone();
    Ok(central
        .db
        .call(move |conn| db::actions::decisions(conn, &id))
        .await?
        .into_iter()
        .filter(|d| d.decision == Decision::Approve)
        .map(|d| PriorApproval { user_id: d.decided_by.accountable_user().clone() })
        .collect())
}

/// Expires a pending action whose time is up (so a late decision sees `ACTION_EXPIRED`).
async fn expire_if_due(central: &Central, action: &ActionRow) -> Result<(), MttrlyError> {
    if action.status == ActionState::PendingApproval && action.expires_at <= now_ms() {
        let id = action.id.clone();
        central
            .db
            .call(move |conn| {
                db::actions::transition(conn, &id, ActionState::PendingApproval, ActionState::Expired, now_ms(), None)
            })
            .await?;
        return Err(ActionState::Expired
            .apply(ActionEvent::Approve)
            .err()
            .unwrap_or_else(|| not_found(&action.id))
            .with_detail("action_id", action.id.as_str()));
    }
    Ok(())
}

/// A human approves. `seen_sha256` is the content hash the human was shown: a mismatch refuses
/// the approval. When the quorum is reached the action is marked running (committed) and then
/// executed; this waits up to `wait` for the outcome.
pub async fn approve(
    central: &Arc<Central>,
    caller: &TokenOwner,
    id: &ActionId,
    seen_sha256: Option<&str>,
    channel: Source,
    wait: Duration,
) -> Result<ActionView, MttrlyError> {
    let action = load(central, caller, id).await?;
    let result = decide_approve(central, caller, &action, seen_sha256, channel).await;
    audit_decision(
        central,
        &action,
        &caller.principal,
        channel,
        events::Decision::Approve,
        None,
        &result.as_ref().map(|_| ()).map_err(Clone::clone),
    );
    match result? {
        ApprovalEffect::Recorded { .. } => {}
        ApprovalEffect::QuorumReached => {
            let running = ActionRow { status: ActionState::Running, ..action.clone() };
            // The execution runs on its own task: it completes (and records its outcome) even if
            // this caller stops waiting.
            let mut job = tokio::spawn(execute::run(Arc::clone(central), running));
            if let Ok(Ok((_, result))) = tokio::time::timeout(wait, &mut job).await {
                let mut view = view(central, caller, id).await?;
                // Includes what is shown once (a reinstall command) and never stored.
                view.result = Some(result);
                return Ok(view);
            }
        }
    }
    view(central, caller, id).await
}

async fn decide_approve(
    central: &Central,
    caller: &TokenOwner,
    action: &ActionRow,
    seen_sha256: Option<&str>,
    channel: Source,
) -> Result<ApprovalEffect, MttrlyError> {
    expire_if_due(central, action).await?;
    if action.status != ActionState::PendingApproval {
        return Err(action
            .status
            .apply(ActionEvent::Approve)
            .err()
            .unwrap_or_else(|| not_found(&action.id))
            .with_detail("action_id", action.id.as_str()));
    }
    if let Some(seen) = seen_sha256
        && seen != action.content_sha256
    {
        return Err(MttrlyError::new(
            ErrorCode::ValidationError,
            "the action's content is not what you were shown; review it again before approving",
        )
        .with_detail("action_id", action.id.as_str())
        .with_detail("content_sha256", action.content_sha256.as_str()));
    }
    let rule = rule_for(central, action);
    let prior = prior_approvals(central, action).await?;
    let effect = check_approval(&rule, &action.requested_by, &decider(caller, channel), &prior)?;
    // One transaction: the decision, and (on quorum) pending → approved → running, conditional on
    // the action still being pending, so a racing second approval finds it already decided.
    let (id, who, sha) = (action.id.clone(), caller.principal.clone(), action.content_sha256.clone());
    let quorum = effect == ApprovalEffect::QuorumReached;
    central.db.call(move |conn| db::actions::approve(conn, &id, &who, channel, &sha, quorum)).await?;
    Ok(effect)
}

/// A human rejects a pending action.
pub async fn reject(
    central: &Central,
    caller: &TokenOwner,
    id: &ActionId,
    reason: Option<String>,
    channel: Source,
) -> Result<ActionView, MttrlyError> {
    let action = load(central, caller, id).await?;
    let result = async {
        expire_if_due(central, &action).await?;
        if action.status != ActionState::PendingApproval {
            return Err(action.status.apply(ActionEvent::Reject).err().unwrap_or_else(|| not_found(id)));
        }
        check_decider(&rule_for(central, &action), &decider(caller, channel))?;
        let (id2, who, sha) = (id.clone(), caller.principal.clone(), action.content_sha256.clone());
        let stored = reason.clone();
        central.db.call(move |conn| db::actions::reject(conn, &id2, &who, channel, &sha, stored.as_deref())).await
    }
    .await;
    audit_decision(central, &action, &caller.principal, channel, events::Decision::Reject, reason.as_deref(), &result);
    result?;
    view(central, caller, id).await
}

/// Withdraws a pending action: allowed to the principal that requested it (an assistant may
/// withdraw its own request: that can only make things safer, so it needs no human and is
/// audited as a `withdraw` by that principal) and to humans who may decide (audited as `cancel`).
pub async fn cancel(
    central: &Central,
    caller: &TokenOwner,
    id: &ActionId,
    reason: Option<String>,
    channel: Source,
) -> Result<ActionView, MttrlyError> {
    let action = load(central, caller, id).await?;
    let withdraw = caller.principal == action.requested_by;
    let result = async {
        expire_if_due(central, &action).await?;
        if action.status != ActionState::PendingApproval {
            return Err(action.status.apply(ActionEvent::Cancel).err().unwrap_or_else(|| not_found(id)));
        }
        if !withdraw {
            check_decider(&rule_for(central, &action), &decider(caller, channel))?;
        } else if caller.scope.check(mttrly_core::ToolId::CancelAction.spec()).is_err() {
            // Even a withdrawal changes state: a read-only or actions-less token changes nothing.
            return Err(MttrlyError::new(
                ErrorCode::Forbidden,
                "this token is read-only or scoped without the `actions` toolset: it can look at actions but decides nothing, not even a withdrawal",
            ));
        }
        let id2 = id.clone();
        let moved = central
            .db
            .call(move |conn| {
                db::actions::transition(
                    conn,
                    &id2,
                    ActionState::PendingApproval,
                    ActionState::Cancelled,
                    now_ms(),
                    None,
                )
            })
            .await?;
        if moved {
            Ok(())
        } else {
            Err(MttrlyError::new(ErrorCode::ValidationError, "the action was decided meanwhile"))
        }
    }
    .await;
    let what = if withdraw { events::Decision::Withdraw } else { events::Decision::Cancel };
    audit_decision(central, &action, &caller.principal, channel, what, reason.as_deref(), &result);
    result?;
    view(central, caller, id).await
}

/// An audit event central records on its own about an action (expiry, crash recovery, fail closed).
fn system_event(action: &ActionRow, kind: AuditKind, parameters: serde_json::Value, code: ErrorCode) -> AuditEvent {
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

/// Expires due pending actions (called every second).
pub async fn expire(central: &Central) -> Result<(), MttrlyError> {
    let expired = central.db.call(|conn| db::actions::expire_due(conn, now_ms())).await?;
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

/// At start: actions a crash left approved or running are failed and never re-sent.
pub async fn recover(central: &Central) -> Result<usize, MttrlyError> {
    let now = now_ms();
    let result = ExecutionResult {
        exit_code: None,
        output: String::new(),
        truncated: false,
        duration_ms: 0,
        started_at: timestamp(now),
        finished_at: timestamp(now),
        error: Some(
            MttrlyError::new(
                ErrorCode::InternalError,
                "outcome unknown: central stopped while this action was running; it was not re-sent",
            )
            .body(),
        ),
        data: None,
    };
    let failed = central.db.call(move |conn| db::actions::fail_interrupted(conn, now, &result)).await?;
    for a in &failed {
        central.audit(Recorded::new(
            system_event(
                a,
                AuditKind::ExecutionResult,
                serde_json::json!({ "recovered": "outcome unknown after restart" }),
                ErrorCode::InternalError,
            ),
            Payload::ActionExecuted { action: a.into(), status: ActionState::Failed, exit_code: None },
        ));
    }
    Ok(failed.len())
}
