//! A human approves: the content they saw, the rule's checks, a fresh second-factor code when the
//! rule asks for one, the decision and (on quorum) the move to running in one transaction, then
//! the execution on its own task.

use std::sync::Arc;
use std::time::Duration;

use mttrly_core::action::{ActionEvent, ActionState};
use mttrly_core::approval::{ApprovalEffect, SecondFactor, check_approval};
use mttrly_core::ids::ActionId;
use mttrly_core::tools::actions::{ActionView, Introduction};
use mttrly_core::{ErrorCode, MttrlyError, Source};

use super::decide::{decider, expire_if_due, prior_approvals};
use super::record::audit_decision;
use super::{execute, load, not_found, rule_for, view};
use crate::db::accounts::TokenOwner;
use crate::db::actions::ActionRow;
use crate::events;
use crate::state::Central;

/// What an approval proved beyond itself, for the audit log.
#[derive(Debug, Clone, Default)]
struct Proved {
    /// A fresh second-factor code was verified for the approving human.
    second_factor: bool,
    /// The approving human is the one who requested the action (or whose assistant did): only
    /// possible under a rule with `requester_may_approve` (in production: solo mode, with TOTP).
    solo: bool,
    /// The requester's human added (or re-invited) the approving human before this decision.
    introduced: Option<Introduction>,
}

impl Proved {
    fn facts(&self) -> Vec<(&'static str, serde_json::Value)> {
        let mut facts = Vec::new();
        if self.second_factor {
            facts.push(("second_factor", SecondFactor::Totp.as_str().into()));
        }
        if self.solo {
            facts.push(("solo", true.into()));
        }
        if let Some(found) = &self.introduced {
            facts.extend(super::introduced::facts(found));
        }
        facts
    }
}

/// A human approves. `seen_sha256` is the content hash the human was shown: a mismatch refuses
/// the approval. `second_factor_code` is a TOTP (or recovery) code the human typed just now; a
/// rule with `second_factor = "totp"` refuses an approval without a valid one. When the quorum is
/// reached the action is marked running (committed) and then executed; this waits up to `wait`
/// for the outcome.
pub async fn approve(
    central: &Arc<Central>,
    caller: &TokenOwner,
    id: &ActionId,
    seen_sha256: Option<&str>,
    second_factor_code: Option<&str>,
    channel: Source,
    wait: Duration,
) -> Result<ActionView, MttrlyError> {
    let action = load(central, caller, id).await?;
    let result = decide_approve(central, caller, &action, seen_sha256, second_factor_code, channel).await;
    let facts = result.as_ref().map(|(_, proved)| proved.facts()).unwrap_or_default();
    audit_decision(
        central,
        &action,
        &caller.principal,
        channel,
        events::Decision::Approve,
        None,
        &facts,
        &result.as_ref().map(|_| ()).map_err(Clone::clone),
    );
    match result?.0 {
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
    second_factor_code: Option<&str>,
    channel: Source,
) -> Result<(ApprovalEffect, Proved), MttrlyError> {
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
    let effect = check_approval(&rule, &action.requested_by, &decider(central, caller, channel), &prior)?;
    // Only a human who may approve gets here, so a code is checked (and a wrong one counted
    // toward their lockout) only for someone the rule would otherwise accept.
    let approver = caller.principal.accountable_user();
    let requester = action.requested_by.accountable_user();
    let mut proved = Proved { second_factor: false, solo: approver == requester, introduced: None };
    if !proved.solo {
        // An add or re-invite a moment ago may still be on its way into the audit log.
        central.audit.flush().await;
        proved.introduced =
            super::introduced::by_requester(central, &action.account_id, requester, approver, crate::db::now_ms())
                .await?;
        if let Some(found) = &proved.introduced {
            super::introduced::refuse_if_after_request(&rule, found, action.created_at, caller)?;
        }
    }
    if rule.second_factor == SecondFactor::Totp {
        let Some(code) = second_factor_code.map(str::trim).filter(|c| !c.is_empty()) else {
            return Err(second_factor_required(action));
        };
        crate::second_factor::verify_from(central, &caller.account_id, approver, code, channel).await?;
        proved.second_factor = true;
    }
    // One transaction: the decision, and (on quorum) pending → approved → running, conditional on
    // the action still being pending, so a racing second approval finds it already decided.
    let quorum = effect == ApprovalEffect::QuorumReached;
    central
        .db
        .account(&action.account_id)
        .actions()
        .approve(&action.id, &caller.principal, channel, &action.content_sha256, quorum)
        .await?;
    Ok((effect, proved))
}

/// `FORBIDDEN` for an approval without the fresh code its rule requires, saying where to type it.
/// A code is typed by the approving human into a human channel, never given to an assistant.
fn second_factor_required(action: &ActionRow) -> MttrlyError {
    MttrlyError::new(
        ErrorCode::Forbidden,
        format!(
            "approving action {} needs a fresh TOTP code from you (its approval rule says second_factor = \"totp\"): \
             run `mttrly-cli actions approve {}`, which asks for it; without a second factor enrolled, run `mttrly-cli totp enroll` first. \
             Never give a code to an assistant",
            action.id, action.id
        ),
    )
    .with_detail("action_id", action.id.as_str())
    .with_detail("second_factor", SecondFactor::Totp.as_str())
    .with_detail("hint", format!("mttrly-cli actions approve {}", action.id))
}
