//! Who brought an approver in. Four eyes means a second person; an admin can make a second
//! identity (`users add sock --token`, or a re-invite whose link they open themselves) and approve
//! their own assistant's action with it. Admins manage people, so that cannot be refused outright
//! (a new colleague added and approving at once looks the same), but it is never invisible: an
//! approval by someone the requester's own human added or sent an invite link to is marked, in the
//! decision's audit parameters and on the approval record (`actions show`).
//!
//! The facts come from the audit log (`AddUser`, `InviteUser`), which records every add and
//! re-invite with its actor; any re-invite by the requester counts, not only the last one, since
//! whoever opened an earlier link may have minted lasting tokens with it. Rows past the plan's
//! retention are gone, and so is their mark.

use mttrly_core::audit::{AuditActor, AuditOutcome};
use mttrly_core::ids::{AccountId, UserId};
use mttrly_core::tools::actions::{ApprovalRecord, Decision, IntroducedBy, Introduction};
use mttrly_core::{MttrlyError, Principal};

use crate::state::Central;

/// The latest time `requester` added or re-invited `approver`, at or before `until_ms`; `None` when
/// they never did, or when they are the same person (that is a solo approval, recorded as such).
pub(super) async fn by_requester(
    central: &Central,
    account: &AccountId,
    requester: &UserId,
    approver: &UserId,
    until_ms: i64,
) -> Result<Option<Introduction>, MttrlyError> {
    if requester == approver {
        return Ok(None);
    }
    let rows = central.db.account(account).audit().introductions(approver, until_ms).await?;
    Ok(rows.into_iter().find_map(|row| {
        let AuditActor::Human { user_id, name } = row.actor else { return None };
        if user_id != *requester || row.outcome != AuditOutcome::Ok {
            return None;
        }
        let how = match row.subject.as_str() {
            "AddUser" => IntroducedBy::Added,
            "InviteUser" => IntroducedBy::Reinvited,
            _ => return None,
        };
        Some(Introduction { how, by: name, at: row.at })
    }))
}

/// Marks each approval in `records` (an action's decisions, requested by `requested_by`) whose
/// approver the requester's human introduced before deciding.
pub(super) async fn mark(
    central: &Central,
    account: &AccountId,
    requested_by: &Principal,
    records: &mut [ApprovalRecord],
) -> Result<(), MttrlyError> {
    for record in records.iter_mut().filter(|r| r.decision == Decision::Approve) {
        let until = record.decided_at.as_millisecond();
        let found = by_requester(
            central,
            account,
            requested_by.accountable_user(),
            record.decided_by.accountable_user(),
            until,
        )
        .await?;
        record.approver_added_by_requester = found.is_some();
        record.approver_introduced = found;
    }
    Ok(())
}

/// The audit facts of an approval by someone the requester introduced.
pub(super) fn facts(found: &Introduction) -> Vec<(&'static str, serde_json::Value)> {
    vec![
        ("approver_added_by_requester", true.into()),
        (
            "approver_introduced",
            serde_json::json!({
                "how": match found.how { IntroducedBy::Added => "added", IntroducedBy::Reinvited => "reinvited" },
                "by": found.by,
                "at": found.at.to_string(),
            }),
        ),
    ]
}
