//! Who brought an approver in. Four eyes means a second person; an admin can make a second
//! identity (`users add sock --token`, or a re-invite whose link they open themselves) and approve
//! their own assistant's action with it. Admins manage people, so that cannot be refused outright
//! (a new colleague added and approving at once looks the same), but it is never invisible: an
//! approval by someone the requester's own human added or sent an invite link to is marked, in the
//! decision's audit parameters and on the approval record (`actions show`).
//!
//!
//! One line is drawn, for rules where the requester may not approve (production's four eyes): an
//! approver the requester's human introduced *after* the request was made is refused
//! ([`refuse_if_after_request`]). A colleague added last month is the second pair of eyes the
//! rule asks for; an identity made or re-keyed while the request waits is the requester again.
//! The same holds for investigation bypass grants.
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

/// How many introductions back the chain is followed: a sock puppet hidden behind more than this
/// many admins is not marked (each step is one more person who had to cooperate).
const MAX_CHAIN: usize = 4;

/// The latest time `requester` added or re-invited `approver`, at or before `until_ms`, directly
/// or through people the requester introduced (the requester adds `relay`, `relay` adds `sock`:
/// `sock` is marked, `by` naming the chain), or the other way round within the last seven days
/// (the approver introduced the requester); `None` when no such chain exists within
/// [`MAX_CHAIN`] steps, or when they are the same person (that is a solo approval, recorded as
/// such).
pub(crate) async fn by_requester(
    central: &Central,
    account: &AccountId,
    requester: &UserId,
    approver: &UserId,
    until_ms: i64,
) -> Result<Option<Introduction>, MttrlyError> {
    if requester == approver {
        return Ok(None);
    }
    if let Some(found) = chain(central, account, requester, approver, until_ms).await? {
        return Ok(Some(found));
    }
    // The other way round: the approver brought the requester in lately (a leaked admin token
    // adds a sock, the sock's assistant asks, the admin token approves). Only recent
    // introductions count this way: whoever onboarded a team approves its requests for years.
    let found = chain(central, account, approver, requester, until_ms).await?;
    Ok(found
        .filter(|f| until_ms.saturating_sub(f.at.as_millisecond()) <= REVERSE_WINDOW_MS)
        .map(|f| Introduction { by: format!("{} (the approver, who introduced the requester)", f.by), ..f }))
}

/// Under a rule where the requester may not approve, refuses a decider the requester's human
/// introduced (`found`) at or after `requested_at_ms`, when the request was made: nothing is
/// recorded and no code is spent. Under other rules the introduction is only marked.
pub(crate) fn refuse_if_after_request(
    rule: &mttrly_core::approval::ApprovalRule,
    found: &Introduction,
    requested_at_ms: i64,
    decider: &crate::db::accounts::TokenOwner,
) -> Result<(), MttrlyError> {
    if rule.requester_may_approve || found.at.as_millisecond() < requested_at_ms {
        return Ok(());
    }
    let how = match found.how {
        IntroducedBy::Added => "added",
        IntroducedBy::Reinvited => "sent an invite link",
    };
    Err(MttrlyError::new(
        mttrly_core::ErrorCode::Forbidden,
        format!(
            "four-eyes rule: {} was {how} by {} after this was requested, so cannot be the second person; \
             someone who was a member before the request must decide",
            decider.user_name, found.by
        ),
    )
    .with_detail("introduced_at", found.at.to_string()))
}

/// How recent an introduction of the requester by the approver must be to mark the approval.
const REVERSE_WINDOW_MS: i64 = 7 * 24 * 60 * 60 * 1000;

/// Whether `requester` introduced `approver` at or before `until_ms`, directly or through people
/// `requester` introduced, within [`MAX_CHAIN`] steps (the search walks back from `approver`).
async fn chain(
    central: &Central,
    account: &AccountId,
    requester: &UserId,
    approver: &UserId,
    until_ms: i64,
) -> Result<Option<Introduction>, MttrlyError> {
    // Breadth first, backwards from the approver: who introduced them, and before that moment,
    // who introduced those people. `via` is the chain from the approver's introducer down.
    let mut frontier: Vec<(UserId, i64, Option<Introduction>, Vec<String>)> =
        vec![(approver.clone(), until_ms, None, Vec::new())];
    let mut seen = std::collections::HashSet::from([approver.clone()]);
    for _ in 0..MAX_CHAIN {
        let mut next = Vec::new();
        for (person, until, first, via) in frontier {
            let rows = central.db.account(account).audit().introductions(&person, until).await?;
            for row in rows {
                let AuditActor::Human { user_id, name } = row.actor else { continue };
                if row.outcome != AuditOutcome::Ok {
                    continue;
                }
                let how = match row.subject.as_str() {
                    "AddUser" => IntroducedBy::Added,
                    "InviteUser" => IntroducedBy::Reinvited,
                    _ => continue,
                };
                let step = first.clone().unwrap_or(Introduction { how, by: name.clone(), at: row.at });
                if user_id == *requester {
                    let by = if via.is_empty() { name } else { format!("{name} (through {})", via.join(", ")) };
                    return Ok(Some(Introduction { by, ..step }));
                }
                if seen.insert(user_id.clone()) {
                    let mut chain = vec![name];
                    chain.extend(via.iter().cloned());
                    next.push((user_id, row.at.as_millisecond(), Some(step), chain));
                }
            }
        }
        if next.is_empty() {
            break;
        }
        frontier = next;
    }
    Ok(None)
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
