//! A tap in chat becomes a human's decision, or a refusal that is audited.
//!
//! What a tap is bound to: the message it was made on. That message was recorded when it was
//! sent, with the action, the person it was sent to and the content hash it showed; so the
//! decision is about exactly what that message said (a changed content refuses it), and only the
//! person it was sent to can make it: their chat account must still be linked to them, and they
//! must still be a living user (a removed person's tap is refused, at once). Everything else is
//! the action engine's: the approval rule, four eyes, roles, expiry, the second factor, a double
//! tap (the second finds the action decided). A message about an investigation bypass is the
//! same record with another subject ([`Subject::Bypass`]): the same binding to its person, then
//! [`super::bypass`] decides it through the grant path.

use std::sync::Arc;
use std::time::Duration;

use mttrly_core::approval::SecondFactor;
use mttrly_core::audit::{AuditActor, AuditEvent, AuditKind, AuditOutcome};
use mttrly_core::tools::actions::ActionView;
use mttrly_core::{ChatProvider, ErrorCode, MttrlyError};

use crate::db::chat::{MessageRow, Posted, Subject};
use crate::state::Central;

/// What the human chose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// Approve (an action), grant (a bypass).
    Approve,
    /// Reject (an action), deny (a bypass), with the reason they typed, if any.
    Reject {
        /// Their words.
        reason: Option<String>,
    },
}

/// A tap on an approval message, as the chat service reported it.
#[derive(Debug, Clone)]
pub struct Tap {
    /// The service.
    pub provider: ChatProvider,
    /// Who tapped: the service's id of the chat account (Telegram user id, Slack `TEAM:USER`).
    pub external_user: String,
    /// The message tapped.
    pub posted: Posted,
    /// Approve or reject.
    pub choice: Choice,
    /// A TOTP or recovery code the human typed in the chat for this decision, if asked.
    pub code: Option<String>,
}

/// What a tap did.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Decided: the action as it stands now (approved and running, waiting for more approvals,
    /// rejected).
    Decided(Box<ActionView>),
    /// Approving (granting) needs a fresh TOTP code from this human first: ask for it, then tap
    /// again with [`Tap::code`]. Nothing was recorded.
    CodeNeeded {
        /// What is decided.
        subject: Subject,
    },
    /// A bypass request was granted or denied.
    Bypass(super::bypass::Decided),
}

/// The message a tap was made on, refusing a tap on anything mttrly did not send.
async fn message(central: &Central, tap: &Tap) -> Result<MessageRow, MttrlyError> {
    if let Some(row) = central.db.chat_lookups().message(tap.provider, &tap.posted).await? {
        return Ok(row);
    }
    tracing::warn!(provider = %tap.provider, user = tap.external_user, "a tap on a message that is not an approval request mttrly sent");
    Err(MttrlyError::new(ErrorCode::Forbidden, "this is not an approval request mttrly sent you"))
}

/// Turns `tap` into a decision by the person the message was sent to.
pub async fn tap(central: &Arc<Central>, tap: Tap) -> Result<Outcome, MttrlyError> {
    let row = message(central, &tap).await?;
    let owner = central.db.chat_lookups().owner(tap.provider, &tap.external_user).await?;
    let Some(owner) =
        owner.filter(|o| o.account_id == row.account_id && o.principal.accountable_user() == &row.user_id)
    else {
        let err = MttrlyError::new(
            ErrorCode::Forbidden,
            format!(
                "this {} account may not decide this action: it is not linked to the person the request was sent to \
                 (or they were removed)",
                tap.provider.display_name()
            ),
        )
        .with_detail(
            match row.subject {
                Subject::Action(_) => "action_id",
                Subject::Bypass(_) => "bypass_id",
            },
            row.subject.as_str(),
        );
        central.audit(refusal(&row, &tap, AuditActor::System, &err, "chat account not linked to the recipient"));
        return Err(err);
    };
    let action_id = match &row.subject {
        Subject::Action(id) => id.clone(),
        Subject::Bypass(id) => {
            let id = id.clone();
            return super::bypass::tap(central, tap, &row, &owner, &id).await;
        }
    };
    match tap.choice {
        // The message could not show the content whole, so it offered no Approve button; a
        // client can still send any callback data, so the refusal is here, not in the layout.
        Choice::Approve if !row.approvable => {
            let err = MttrlyError::new(
                ErrorCode::Forbidden,
                format!(
                    "this message could not show the whole content, so it cannot approve: read it with \
                     `mttrly-cli actions show {action_id}` and approve there"
                ),
            )
            .with_detail("action_id", action_id.as_str());
            central.audit(refusal(&row, &tap, AuditActor::System, &err, "the message did not show the content whole"));
            Err(err)
        }
        Choice::Approve => {
            let code = tap.code.as_deref().map(str::trim).filter(|c| !c.is_empty());
            if code.is_none() {
                let action = crate::actions::load(central, &owner, &action_id).await?;
                if crate::actions::rule_for(central, &action).second_factor == SecondFactor::Totp {
                    return Ok(Outcome::CodeNeeded { subject: row.subject });
                }
            }
            let view = crate::actions::approve(
                central,
                &owner,
                &action_id,
                Some(&row.content_sha256),
                code,
                tap.provider.source(),
                Duration::ZERO,
            )
            .await?;
            Ok(Outcome::Decided(Box::new(view)))
        }
        Choice::Reject { reason } => {
            let view = crate::actions::reject(central, &owner, &action_id, reason, tap.provider.source()).await?;
            Ok(Outcome::Decided(Box::new(view)))
        }
    }
}

/// The audit row of a tap refused before it reached the engine (a stranger, an unlinked or
/// removed person, an approval from a message that could not show the content whole; for a
/// bypass also a changed request or a person who may not grant), in the account of the message,
/// by `actor`: the linked person when there is one, else the system.
pub(super) fn refusal(row: &MessageRow, tap: &Tap, actor: AuditActor, err: &MttrlyError, why: &str) -> AuditEvent {
    AuditEvent {
        at: jiff::Timestamp::now(),
        account_id: row.account_id.clone(),
        server_id: None,
        actor,
        source: tap.provider.source(),
        kind: AuditKind::ApprovalDecision,
        subject: row.subject.to_string(),
        parameters: serde_json::json!({
            "decision": match (&row.subject, &tap.choice) {
                (Subject::Action(_), Choice::Approve) => "approve",
                (Subject::Action(_), Choice::Reject { .. }) => "reject",
                (Subject::Bypass(_), Choice::Approve) => "grant_bypass",
                (Subject::Bypass(_), Choice::Reject { .. }) => "deny_bypass",
            },
            "refused": why,
            "provider": tap.provider.as_str(),
            "external_user": tap.external_user,
            "chat_id": tap.posted.chat_id,
        }),
        outcome: AuditOutcome::Error { code: err.code() },
        duration_ms: None,
    }
}
