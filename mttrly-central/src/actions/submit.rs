//! Creating an action: pending approval (within the per-server cap, its prompt delivered or the
//! action failed closed), or run at once when policy says it is read-only.

use std::sync::Arc;
use std::time::Duration;

use mttrly_core::action::{ActionContent, ActionState};
use mttrly_core::approval::{ApprovalRule, SecondFactor};
use mttrly_core::audit::{AuditEvent, AuditKind, AuditOutcome};
use mttrly_core::ids::ActionId;
use mttrly_core::tools::actions::ActionSubmission;
use mttrly_core::{ErrorCode, MttrlyError, Source};

use super::execute;
use super::record::system_event;
use crate::db::accounts::TokenOwner;
use crate::db::actions::{ActionLink, ActionRow, Created};
use crate::db::servers::ServerRow;
use crate::db::{now_ms, timestamp};
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

/// The next step a user should take for an action, in words: who must approve it and how (from
/// the action's own rule), and, when nobody in the account can, why and the fix (`warning`), so
/// the assistant can tell its human at once instead of letting the action expire.
fn next_step(action: &ActionRow, rule: &ApprovalRule, warning: Option<&str>) -> String {
    match action.status {
        ActionState::PendingApproval => {
            let mut step = format!(
                "{} must approve this action before it runs, outside this conversation: `mttrly-cli actions approve {}`{} (expires at {}).",
                if rule.requester_may_approve { "A human" } else { "A human other than the one who asked (four eyes)" },
                action.id,
                if rule.second_factor == SecondFactor::Totp {
                    ", which asks them for a fresh TOTP code (never share a code with an assistant)"
                } else {
                    ""
                },
                timestamp(action.expires_at)
            );
            if let Some(warning) = warning {
                step.push_str(&format!(" Warning: {warning}"));
            }
            step
        }
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
    submit_linked(central, caller, via, new, ActionLink::default()).await
}

/// [`submit`] under an investigation (`link`): the action is linked to it, and with a bypass
/// claim it runs at once when a slot of the bypass is taken in the create transaction; otherwise
/// it is an ordinary pending action (a bypass that ran out is never an error). The creation's
/// audit row names the investigation, and the bypass with the slots left when one was used.
pub async fn submit_linked(
    central: &Arc<Central>,
    caller: &TokenOwner,
    via: Source,
    new: NewAction,
    link: ActionLink,
) -> Result<ActionSubmission, MttrlyError> {
    if !new.run_at_once {
        crate::auth::refuse_viewer(caller, "request changes")?;
    }
    let now = now_ms();
    let rule = super::rules::rule_for_content(central, new.server.environment, &new.content);
    let ttl = i64::try_from(rule.ttl.as_millis()).unwrap_or(i64::MAX);
    let mut action = ActionRow {
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
    let cap = central.config.max_pending_actions_per_server;
    let created = central
        .db
        .account(&caller.account_id)
        .actions()
        .create_linked(action.clone(), new.payload, cap, now, link.clone())
        .await?;
    let mut run_at_once = new.run_at_once;
    let mut bypass_facts = None;
    match created {
        Created::CapReached { pending, first_expiry } => {
            return Err(pending_cap_reached(&action, pending, cap, first_expiry, now));
        }
        Created::Bypassed { remaining } => {
            if let Some(claim) = &link.bypass {
                action = action.under_bypass(claim.description.clone());
                bypass_facts = Some((claim.clone(), remaining));
            }
            run_at_once = true;
        }
        Created::Stored => {}
    }
    let mut parameters = serde_json::json!({
        "created": action.content.action_type(),
        "content": action.content,
        "content_sha256": action.content_sha256,
        "status": action.status,
    });
    if let Some(investigation) = &link.investigation_id {
        parameters["investigation_id"] = investigation.as_str().into();
    }
    if let Some((claim, remaining)) = &bypass_facts {
        parameters["bypass_id"] = claim.bypass_id.as_str().into();
        parameters["remaining_actions"] = (*remaining).into();
        parameters["bypass_granted_by"] = serde_json::to_value(&claim.granted_by).unwrap_or_default();
        parameters["bypass_granted_at"] = claim.granted_at.map(|t| timestamp(t).to_string()).into();
    }
    let created = AuditEvent {
        at: jiff::Timestamp::now(),
        account_id: action.account_id.clone(),
        server_id: Some(action.server_id.clone()),
        actor: caller.principal.clone().into(),
        source: via,
        kind: AuditKind::ToolCall,
        subject: action.id.to_string(),
        parameters,
        outcome: AuditOutcome::Ok,
        duration_ms: None,
    };
    let created = Recorded::new(created, Payload::ActionCreated(Arc::new(action.clone())));
    if action.status == ActionState::PendingApproval {
        prompt_or_fail_closed(central, &action, created).await?;
    } else {
        central.audit(created);
    }
    // Advice only: a failure to read the account's people never fails the request.
    let warning = if action.status == ActionState::PendingApproval {
        crate::approvals::action_warning(central, &action).await.unwrap_or_else(|e| {
            tracing::warn!(action = %action.id, error = %e, "cannot check whether anyone can approve an action");
            None
        })
    } else {
        None
    };
    let mut result = None;
    let mut status = action.status;
    if run_at_once {
        let done = execute::run(Arc::clone(central), action.clone()).await;
        status = done.0;
        result = Some(done.1);
    }
    Ok(ActionSubmission {
        action_id: action.id.clone(),
        server_id: action.server_id.clone(),
        action_type: action.content.action_type(),
        status,
        requires_approval: !run_at_once,
        description: action.description.clone(),
        expires_at: (status == ActionState::PendingApproval).then(|| timestamp(action.expires_at)),
        result,
        next_step: next_step(&ActionRow { status, ..action }, &rule, warning.as_deref()),
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
    let required = central.prompt_required();
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
    central
        .db
        .account(&action.account_id)
        .actions()
        .transition(&action.id, ActionState::PendingApproval, ActionState::FailedClosed, None)
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
