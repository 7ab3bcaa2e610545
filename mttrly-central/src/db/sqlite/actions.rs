//! Actions and the human decisions on them: the SQL. Every operation on one action names its
//! account too, so a handle bound to one tenant cannot touch another's action by id.

use mttrly_core::action::ActionState;
use mttrly_core::ids::{AccountId, ActionId, ServerId};
use mttrly_core::tools::actions::{ApprovalRecord, Decision, ExecutionResult};
use mttrly_core::{MttrlyError, Principal, Source};
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use super::internal;
use crate::db::actions::{ActionLink, ActionRow, Created};
use crate::db::{now_ms, timestamp};

fn state_name(s: ActionState) -> &'static str {
    s.as_str()
}

fn parse_state(s: &str) -> Option<ActionState> {
    ActionState::ALL.into_iter().find(|st| st.as_str() == s)
}

const COLUMNS: &str = "a.id, a.account_id, a.server_id, s.name, a.environment, a.content_json, a.content_sha256, \
                       a.description, a.requested_by_json, a.requested_via, a.status, a.approvals_required, \
                       a.created_at, a.updated_at, a.expires_at, a.result_json, a.reason";

#[allow(clippy::unnecessary_wraps)] // the shape rusqlite's query_map wants
fn row(r: &Row<'_>) -> rusqlite::Result<Option<ActionRow>> {
    let get = |i| r.get::<_, String>(i);
    let parsed = (|| {
        Some(ActionRow {
            id: ActionId::parse(&get(0).ok()?).ok()?,
            account_id: AccountId::parse(&get(1).ok()?).ok()?,
            server_id: ServerId::parse(&get(2).ok()?).ok()?,
            server_name: get(3).ok()?,
            environment: get(4).ok()?.parse().ok()?,
            content: serde_json::from_str(&get(5).ok()?).ok()?,
            content_sha256: get(6).ok()?,
            description: get(7).ok()?,
            requested_by: serde_json::from_str(&get(8).ok()?).ok()?,
            requested_via: get(9).ok()?.parse().ok()?,
            status: parse_state(&get(10).ok()?)?,
            approvals_required: r.get(11).ok()?,
            created_at: r.get(12).ok()?,
            updated_at: r.get(13).ok()?,
            expires_at: r.get(14).ok()?,
            result: r.get::<_, Option<String>>(15).ok()?.and_then(|j| serde_json::from_str(&j).ok()),
            reason: r.get::<_, Option<String>>(16).ok()?,
        })
    })();
    Ok(parsed)
}

/// Stores the bytes an action carries by hash.
pub(in crate::db) fn insert_payload(conn: &Connection, id: &ActionId, payload: &[u8]) -> Result<(), MttrlyError> {
    conn.execute("INSERT INTO action_payloads (action_id, payload) VALUES (?1, ?2)", params![id.as_str(), payload])
        .map_err(internal)?;
    Ok(())
}

/// The bytes an action carries, if any.
pub(in crate::db) fn payload(
    conn: &Connection,
    account: &AccountId,
    id: &ActionId,
) -> Result<Option<Vec<u8>>, MttrlyError> {
    conn.query_row(
        "SELECT p.payload FROM action_payloads p JOIN actions a ON a.id = p.action_id
         WHERE p.action_id = ?1 AND a.account_id = ?2",
        params![id.as_str(), account.as_str()],
        |r| r.get(0),
    )
    .optional()
    .map_err(internal)
}

/// How many actions wait for a decision on `server` at `now_ms` (expired ones no longer count,
/// even before the sweeper marks them), and when the first of them expires.
pub(in crate::db) fn pending_on_server(
    conn: &Connection,
    account: &AccountId,
    server: &ServerId,
    now_ms: i64,
) -> Result<(u32, Option<i64>), MttrlyError> {
    conn.query_row(
        "SELECT COUNT(*), MIN(expires_at) FROM actions
         WHERE server_id = ?1 AND account_id = ?3 AND status = 'pending_approval' AND expires_at > ?2",
        params![server.as_str(), now_ms, account.as_str()],
        |r| Ok((r.get::<_, u32>(0)?, r.get::<_, Option<i64>>(1)?)),
    )
    .map_err(internal)
}

/// Stores an action.
pub(in crate::db) fn insert(conn: &Connection, a: &ActionRow) -> Result<(), MttrlyError> {
    conn.execute(
        "INSERT INTO actions (id, account_id, server_id, environment, action_type, content_json, content_sha256,
         description, requested_by_json, requested_via, status, approvals_required, created_at, updated_at, expires_at,
         result_json, reason) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
        params![
            a.id.as_str(),
            a.account_id.as_str(),
            a.server_id.as_str(),
            a.environment.as_str(),
            a.content.action_type().as_str(),
            String::from_utf8(a.content.canonical_bytes()).unwrap_or_default(),
            a.content_sha256,
            a.description,
            serde_json::to_string(&a.requested_by).unwrap_or_default(),
            a.requested_via.as_str(),
            state_name(a.status),
            a.approvals_required,
            a.created_at,
            a.updated_at,
            a.expires_at,
            a.result.as_ref().and_then(|r| serde_json::to_string(r).ok()),
            a.reason,
        ],
    )
    .map_err(internal)?;
    Ok(())
}

/// The account's action, or `None` (also for another account's action).
pub(in crate::db) fn get(
    conn: &Connection,
    account: &AccountId,
    id: &ActionId,
) -> Result<Option<ActionRow>, MttrlyError> {
    conn.query_row(
        &format!(
            "SELECT {COLUMNS} FROM actions a JOIN servers s ON s.id = a.server_id WHERE a.id = ?1 AND a.account_id = ?2"
        ),
        params![id.as_str(), account.as_str()],
        row,
    )
    .optional()
    .map(Option::flatten)
    .map_err(internal)
}

/// The account's actions, newest first.
pub(in crate::db) fn list(
    conn: &Connection,
    account: &AccountId,
    server: Option<&ServerId>,
    status: Option<ActionState>,
    limit: u32,
) -> Result<Vec<ActionRow>, MttrlyError> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM actions a JOIN servers s ON s.id = a.server_id
             WHERE a.account_id = ?1 AND (?2 IS NULL OR a.server_id = ?2) AND (?3 IS NULL OR a.status = ?3)
             ORDER BY a.created_at DESC, a.id DESC LIMIT ?4"
        ))
        .map_err(internal)?;
    let rows = stmt
        .query_map(params![account.as_str(), server.map(ServerId::as_str), status.map(state_name), limit], row)
        .map_err(internal)?;
    let mut out = Vec::new();
    for r in rows {
        if let Some(a) = r.map_err(internal)? {
            out.push(a);
        }
    }
    Ok(out)
}

/// Moves an action from `from` to `to` if it is still in `from`; returns whether it moved. The
/// condition makes concurrent decisions safe: only one of two racing approvals can win.
pub(in crate::db) fn transition(
    conn: &Connection,
    account: &AccountId,
    id: &ActionId,
    from: ActionState,
    to: ActionState,
    now: i64,
    result: Option<&ExecutionResult>,
) -> Result<bool, MttrlyError> {
    let changed = conn
        .execute(
            "UPDATE actions SET status = ?3, updated_at = ?4, result_json = COALESCE(?5, result_json)
             WHERE id = ?1 AND status = ?2 AND account_id = ?6",
            params![
                id.as_str(),
                state_name(from),
                state_name(to),
                now,
                result.and_then(|r| serde_json::to_string(r).ok()),
                account.as_str()
            ],
        )
        .map_err(internal)?;
    Ok(changed == 1)
}

/// Records a human decision.
#[allow(clippy::too_many_arguments)]
pub(in crate::db) fn insert_decision(
    conn: &Connection,
    id: &ActionId,
    decided_by: &Principal,
    decision: Decision,
    channel: Source,
    content_sha256: &str,
    reason: Option<&str>,
    now: i64,
) -> Result<(), MttrlyError> {
    conn.execute(
        "INSERT INTO approvals (action_id, user_id, decided_by_json, decision, channel, content_sha256, reason, decided_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            id.as_str(),
            decided_by.accountable_user().as_str(),
            serde_json::to_string(decided_by).unwrap_or_default(),
            if decision == Decision::Approve { "approve" } else { "reject" },
            channel.as_str(),
            content_sha256,
            reason,
            now
        ],
    )
    .map_err(internal)?;
    Ok(())
}

/// How many approvals each of the account's pending actions has.
pub(in crate::db) fn approval_counts(
    conn: &Connection,
    account: &AccountId,
) -> Result<std::collections::HashMap<ActionId, u32>, MttrlyError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT p.action_id, COUNT(*) FROM approvals p JOIN actions a ON a.id = p.action_id
             WHERE a.account_id = ?1 AND a.status = 'pending_approval' AND p.decision = 'approve' GROUP BY p.action_id",
        )
        .map_err(internal)?;
    let rows = stmt
        .query_map(params![account.as_str()], |r| Ok((r.get::<_, String>(0)?, r.get::<_, u32>(1)?)))
        .map_err(internal)?;
    let mut out = std::collections::HashMap::new();
    for r in rows {
        let (id, n) = r.map_err(internal)?;
        if let Ok(id) = ActionId::parse(&id) {
            out.insert(id, n);
        }
    }
    Ok(out)
}

/// The decisions on an action, oldest first.
pub(in crate::db) fn decisions(
    conn: &Connection,
    account: &AccountId,
    id: &ActionId,
) -> Result<Vec<ApprovalRecord>, MttrlyError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT p.decided_by_json, p.decision, p.channel, p.decided_at, p.reason
             FROM approvals p JOIN actions a ON a.id = p.action_id
             WHERE p.action_id = ?1 AND a.account_id = ?2 ORDER BY p.decided_at",
        )
        .map_err(internal)?;
    let rows = stmt
        .query_map(params![id.as_str(), account.as_str()], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, Option<String>>(4)?,
            ))
        })
        .map_err(internal)?;
    let mut out = Vec::new();
    for r in rows {
        let (by, decision, channel, at, reason) = r.map_err(internal)?;
        let (Ok(decided_by), Ok(channel)) = (serde_json::from_str(&by), channel.parse()) else { continue };
        out.push(ApprovalRecord {
            decided_by,
            decision: if decision == "approve" { Decision::Approve } else { Decision::Reject },
            channel,
            decided_at: timestamp(at),
            reason,
            // Filled in by `actions::introduced`, from the audit log.
            approver_added_by_requester: false,
            approver_introduced: None,
        });
    }
    Ok(out)
}

/// Expires every pending action past its expiry; returns them.
pub(in crate::db) fn expire_due(conn: &mut Connection, now: i64) -> Result<Vec<ActionRow>, MttrlyError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(internal)?;
    let due: Vec<ActionRow> = {
        let mut stmt = tx
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM actions a JOIN servers s ON s.id = a.server_id
                 WHERE a.status = 'pending_approval' AND a.expires_at <= ?1"
            ))
            .map_err(internal)?;
        let rows = stmt.query_map(params![now], row).map_err(internal)?;
        rows.filter_map(|r| r.ok().flatten()).collect()
    };
    for a in &due {
        transition(&tx, &a.account_id, &a.id, ActionState::PendingApproval, ActionState::Expired, now, None)?;
    }
    tx.commit().map_err(internal)?;
    Ok(due)
}

/// After a crash: actions left `approved` or `running` become `failed` with `result`, never
/// re-sent. Returns them.
pub(in crate::db) fn fail_interrupted(
    conn: &mut Connection,
    now: i64,
    result: &ExecutionResult,
) -> Result<Vec<ActionRow>, MttrlyError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(internal)?;
    let stuck: Vec<ActionRow> = {
        let mut stmt = tx
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM actions a JOIN servers s ON s.id = a.server_id WHERE a.status IN ('approved', 'running')"
            ))
            .map_err(internal)?;
        let rows = stmt.query_map([], row).map_err(internal)?;
        rows.filter_map(|r| r.ok().flatten()).collect()
    };
    for a in &stuck {
        transition(&tx, &a.account_id, &a.id, a.status, ActionState::Failed, now, Some(result))?;
    }
    tx.commit().map_err(internal)?;
    Ok(stuck)
}

/// Stores a new action and its payload in one IMMEDIATE transaction; a pending one only while
/// fewer than `cap` actions wait on its server at `now`.
pub(in crate::db) fn create_linked(
    conn: &mut Connection,
    requested: &ActionRow,
    payload: Option<&[u8]>,
    cap: u32,
    now: i64,
    link: &ActionLink,
) -> Result<Created, MttrlyError> {
    // IMMEDIATE takes the write lock before counting, so concurrent submissions are
    // serialised and none can slip past the cap between the count and the insert (nor two of
    // them take the same bypass slot).
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(internal)?;
    let mut bypassed = None;
    if let (Some(investigation), Some(claim)) = (&link.investigation_id, &link.bypass)
        && let Some(remaining) =
            super::investigations::take_slot(&tx, &requested.account_id, investigation, &claim.bypass_id, now)?
    {
        bypassed = Some((remaining, claim));
    }
    let under_bypass;
    let stored = match bypassed {
        Some((_, claim)) => {
            under_bypass = requested.clone().under_bypass(claim.description.clone());
            &under_bypass
        }
        None => requested,
    };
    if stored.status == ActionState::PendingApproval {
        let (pending, first_expiry) = pending_on_server(&tx, &stored.account_id, &stored.server_id, now)?;
        if pending >= cap {
            return Ok(Created::CapReached { pending, first_expiry });
        }
    }
    insert(&tx, stored)?;
    if let Some(bytes) = payload {
        insert_payload(&tx, &stored.id, bytes)?;
    }
    if let Some(investigation) = &link.investigation_id {
        let bypass = bypassed.map(|(_, claim)| &claim.bypass_id);
        super::investigations::link_action(&tx, &stored.account_id, &stored.id, investigation, bypass, now)?;
    }
    tx.commit().map_err(internal)?;
    Ok(match bypassed {
        Some((remaining, _)) => Created::Bypassed { remaining },
        None => Created::Stored,
    })
}

/// Marks a running action failed with `result` because it never reached its agent (offline, or
/// the capability refused), and in the same IMMEDIATE transaction gives back the bypass slot it
/// took, if it ran under one: nothing ran, so nothing of the grant was used. Conditional on the
/// action still running; returns (moved, slot returned).
pub(in crate::db) fn fail_undispatched(
    conn: &mut Connection,
    account: &AccountId,
    id: &ActionId,
    result: &ExecutionResult,
    now: i64,
) -> Result<(bool, bool), MttrlyError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(internal)?;
    if !transition(&tx, account, id, ActionState::Running, ActionState::Failed, now, Some(result))? {
        return Ok((false, false));
    }
    let returned = super::investigations::return_slot(&tx, account, id)?;
    tx.commit().map_err(internal)?;
    Ok((true, returned))
}

/// Records an approval in one IMMEDIATE transaction; when it reaches the quorum, also moves the
/// action pending → approved → running, conditional on it still being pending, so a racing
/// second approval finds it already decided.
pub(in crate::db) fn approve(
    conn: &mut Connection,
    account: &AccountId,
    id: &ActionId,
    who: &Principal,
    channel: Source,
    content_sha256: &str,
    quorum_reached: bool,
) -> Result<(), MttrlyError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(internal)?;
    let now = now_ms();
    if quorum_reached {
        let moved = transition(&tx, account, id, ActionState::PendingApproval, ActionState::Approved, now, None)?
            && transition(&tx, account, id, ActionState::Approved, ActionState::Running, now, None)?;
        if !moved {
            return Err(MttrlyError::new(
                mttrly_core::ErrorCode::ValidationError,
                "the action was decided by someone else meanwhile",
            )
            .with_detail("action_id", id.as_str()));
        }
    }
    insert_decision(&tx, id, who, Decision::Approve, channel, content_sha256, None, now)?;
    tx.commit().map_err(internal)
}

/// Records a rejection in one IMMEDIATE transaction, moving the action pending → rejected,
/// conditional on it still being pending.
pub(in crate::db) fn reject(
    conn: &mut Connection,
    account: &AccountId,
    id: &ActionId,
    who: &Principal,
    channel: Source,
    content_sha256: &str,
    reason: Option<&str>,
) -> Result<(), MttrlyError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(internal)?;
    let now = now_ms();
    if !transition(&tx, account, id, ActionState::PendingApproval, ActionState::Rejected, now, None)? {
        return Err(MttrlyError::new(
            mttrly_core::ErrorCode::ValidationError,
            "the action was decided by someone else meanwhile",
        ));
    }
    insert_decision(&tx, id, who, Decision::Reject, channel, content_sha256, reason, now)?;
    tx.commit().map_err(internal)
}
