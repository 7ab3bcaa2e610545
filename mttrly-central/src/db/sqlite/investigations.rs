//! Investigations and their bypasses: the SQL. Every statement names the account, so a handle
//! bound to one tenant cannot reach another's rows by id.

use mttrly_core::ids::{AccountId, ActionId, AlertId, BypassId, InvestigationId, ServerId, UserId};
use mttrly_core::tools::common::Severity;
use mttrly_core::tools::investigations::{BypassStatus, GrantScope, InvestigationStatus};
use mttrly_core::{ErrorCode, MttrlyError};
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use super::internal;
use crate::db::investigations::{
    BypassRow, Granted, InvestigationRow, LinkedAction, Requested, Swept, scope_from_columns,
};

const INVESTIGATION_COLUMNS: &str = "id, account_id, server_id, user_id, client, client_name, title, alert_id, status, \
                                     opened_at, last_activity_at, closed_at, close_reason, version";

const BYPASS_COLUMNS: &str = "id, account_id, investigation_id, server_id, tools_json, pins_json, status, requested_at, \
                              requested_by_json, reason, duration_minutes, granted_by, granted_by_name, granted_at, \
                              expires_at, max_actions, actions_used, revoked_at";

fn corrupt(what: &str) -> MttrlyError {
    tracing::error!(what, "an investigation row does not parse");
    MttrlyError::new(ErrorCode::InternalError, "internal database error")
}

fn investigation(r: &Row<'_>) -> rusqlite::Result<Result<InvestigationRow, MttrlyError>> {
    let status: String = r.get(8)?;
    let alert: Option<String> = r.get(7)?;
    let parsed = (|| {
        Some(InvestigationRow {
            id: InvestigationId::parse(&r.get::<_, String>(0).ok()?).ok()?,
            account_id: AccountId::parse(&r.get::<_, String>(1).ok()?).ok()?,
            server_id: ServerId::parse(&r.get::<_, String>(2).ok()?).ok()?,
            user_id: UserId::parse(&r.get::<_, String>(3).ok()?).ok()?,
            client: r.get(4).ok()?,
            client_name: r.get(5).ok()?,
            title: r.get(6).ok()?,
            alert_id: match alert {
                Some(a) => Some(AlertId::parse(&a).ok()?),
                None => None,
            },
            status: match status.as_str() {
                "open" => InvestigationStatus::Open,
                "closed" => InvestigationStatus::Closed,
                _ => return None,
            },
            opened_at: r.get(9).ok()?,
            last_activity_at: r.get(10).ok()?,
            closed_at: r.get(11).ok()?,
            close_reason: r.get(12).ok()?,
            version: r.get(13).ok()?,
        })
    })();
    Ok(parsed.ok_or_else(|| corrupt("investigation")))
}

#[allow(clippy::unnecessary_wraps)] // the shape rusqlite's query_row wants
fn bypass_row(r: &Row<'_>) -> rusqlite::Result<Result<BypassRow, MttrlyError>> {
    let parsed = (|| {
        let minutes: u32 = r.get(10).ok()?;
        let max_actions: u32 = r.get(15).ok()?;
        let scope =
            scope_from_columns(&r.get::<_, String>(4).ok()?, &r.get::<_, String>(5).ok()?, minutes, max_actions)?;
        let granted_by: Option<String> = r.get(11).ok()?;
        Some(BypassRow {
            id: BypassId::parse(&r.get::<_, String>(0).ok()?).ok()?,
            account_id: AccountId::parse(&r.get::<_, String>(1).ok()?).ok()?,
            investigation_id: InvestigationId::parse(&r.get::<_, String>(2).ok()?).ok()?,
            server_id: ServerId::parse(&r.get::<_, String>(3).ok()?).ok()?,
            scope,
            status: r.get::<_, String>(6).ok()?.parse().ok()?,
            requested_at: r.get(7).ok()?,
            requested_by: serde_json::from_str(&r.get::<_, String>(8).ok()?).ok()?,
            reason: r.get(9).ok()?,
            granted_by: match granted_by {
                Some(u) => Some(UserId::parse(&u).ok()?),
                None => None,
            },
            granted_by_name: r.get(12).ok()?,
            granted_at: r.get(13).ok()?,
            expires_at: r.get(14).ok()?,
            actions_used: r.get(16).ok()?,
            revoked_at: r.get(17).ok()?,
        })
    })();
    Ok(parsed.ok_or_else(|| corrupt("bypass")))
}

pub(in crate::db) fn get(
    conn: &Connection,
    account: &AccountId,
    id: &InvestigationId,
) -> Result<Option<InvestigationRow>, MttrlyError> {
    conn.query_row(
        &format!("SELECT {INVESTIGATION_COLUMNS} FROM investigations WHERE id = ?1 AND account_id = ?2"),
        params![id.as_str(), account.as_str()],
        investigation,
    )
    .optional()
    .map_err(internal)?
    .transpose()
}

pub(in crate::db) fn latest_bypass(
    conn: &Connection,
    account: &AccountId,
    investigation: &InvestigationId,
) -> Result<Option<BypassRow>, MttrlyError> {
    conn.query_row(
        &format!(
            "SELECT {BYPASS_COLUMNS} FROM investigation_bypasses WHERE investigation_id = ?1 AND account_id = ?2
             ORDER BY requested_at DESC, id DESC LIMIT 1"
        ),
        params![investigation.as_str(), account.as_str()],
        bypass_row,
    )
    .optional()
    .map_err(internal)?
    .transpose()
}

pub(in crate::db) fn bypass(
    conn: &Connection,
    account: &AccountId,
    id: &BypassId,
) -> Result<Option<BypassRow>, MttrlyError> {
    conn.query_row(
        &format!("SELECT {BYPASS_COLUMNS} FROM investigation_bypasses WHERE id = ?1 AND account_id = ?2"),
        params![id.as_str(), account.as_str()],
        bypass_row,
    )
    .optional()
    .map_err(internal)?
    .transpose()
}

pub(in crate::db) fn list(
    conn: &Connection,
    account: &AccountId,
    open_only: bool,
    server: Option<&ServerId>,
    limit: u32,
) -> Result<Vec<(InvestigationRow, Option<BypassRow>)>, MttrlyError> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {INVESTIGATION_COLUMNS} FROM investigations
             WHERE account_id = ?1 AND (?2 = 0 OR status = 'open') AND (?3 IS NULL OR server_id = ?3)
             ORDER BY opened_at DESC, id DESC LIMIT ?4"
        ))
        .map_err(internal)?;
    let rows: Vec<InvestigationRow> = stmt
        .query_map(params![account.as_str(), open_only, server.map(ServerId::as_str), limit], investigation)
        .map_err(internal)?
        .map(|r| r.map_err(internal).and_then(|r| r))
        .collect::<Result<_, _>>()?;
    rows.into_iter()
        .map(|row| {
            let latest = latest_bypass(conn, account, &row.id)?;
            Ok((row, latest))
        })
        .collect()
}

fn insert_investigation(conn: &Connection, row: &InvestigationRow) -> Result<(), MttrlyError> {
    conn.execute(
        "INSERT INTO investigations (id, account_id, server_id, user_id, client, client_name, title, alert_id, status,
             opened_at, last_activity_at, closed_at, close_reason, version)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'open', ?9, ?9, NULL, NULL, 0)",
        params![
            row.id.as_str(),
            row.account_id.as_str(),
            row.server_id.as_str(),
            row.user_id.as_str(),
            row.client,
            row.client_name,
            row.title,
            row.alert_id.as_ref().map(AlertId::as_str),
            row.opened_at,
        ],
    )
    .map_err(internal)?;
    Ok(())
}

/// Revokes the investigation's pending or active bypass; returns its id if there was one.
fn revoke_live(
    conn: &Connection,
    account: &AccountId,
    investigation: &InvestigationId,
    now: i64,
) -> Result<Option<BypassId>, MttrlyError> {
    let id: Option<String> = conn
        .query_row(
            "UPDATE investigation_bypasses SET status = 'revoked', revoked_at = ?3
             WHERE investigation_id = ?1 AND account_id = ?2 AND status IN ('pending', 'active')
             RETURNING id",
            params![investigation.as_str(), account.as_str(), now],
            |r| r.get(0),
        )
        .optional()
        .map_err(internal)?;
    id.map(|id| BypassId::parse(&id).map_err(|_| corrupt("bypass id"))).transpose()
}

fn close_in(
    conn: &Connection,
    account: &AccountId,
    id: &InvestigationId,
    reason: &str,
    now: i64,
) -> Result<Option<(InvestigationRow, Option<BypassId>)>, MttrlyError> {
    let closed = conn
        .execute(
            "UPDATE investigations SET status = 'closed', closed_at = ?3, close_reason = ?4, version = version + 1
             WHERE id = ?1 AND account_id = ?2 AND status = 'open'",
            params![id.as_str(), account.as_str(), now, reason],
        )
        .map_err(internal)?;
    if closed == 0 {
        return Ok(None);
    }
    let revoked = revoke_live(conn, account, id, now)?;
    Ok(get(conn, account, id)?.map(|row| (row, revoked)))
}

pub(in crate::db) fn open_or_resume(
    conn: &mut Connection,
    new: &InvestigationRow,
    idle_ms: i64,
    now: i64,
) -> Result<(InvestigationRow, bool), MttrlyError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(internal)?;
    let open = tx
        .query_row(
            &format!(
                "SELECT {INVESTIGATION_COLUMNS} FROM investigations
                 WHERE account_id = ?1 AND user_id = ?2 AND client = ?3 AND server_id = ?4 AND status = 'open'"
            ),
            params![new.account_id.as_str(), new.user_id.as_str(), new.client, new.server_id.as_str()],
            investigation,
        )
        .optional()
        .map_err(internal)?
        .transpose()?;
    if let Some(open) = open {
        if open.last_activity_at.saturating_add(idle_ms) > now {
            tx.execute(
                "UPDATE investigations SET last_activity_at = ?3 WHERE id = ?1 AND account_id = ?2",
                params![open.id.as_str(), open.account_id.as_str(), now],
            )
            .map_err(internal)?;
            tx.commit().map_err(internal)?;
            return Ok((InvestigationRow { last_activity_at: now, ..open }, true));
        }
        // Idle past its lifetime but not swept yet: it ends here, as the sweep would end it.
        close_in(&tx, &open.account_id, &open.id, "idle", now)?;
    }
    insert_investigation(&tx, new)?;
    tx.commit().map_err(internal)?;
    Ok((new.clone(), false))
}

pub(in crate::db) fn touch(
    conn: &mut Connection,
    account: &AccountId,
    id: &InvestigationId,
    now: i64,
) -> Result<(), MttrlyError> {
    conn.execute(
        "UPDATE investigations SET last_activity_at = MAX(last_activity_at, ?3)
         WHERE id = ?1 AND account_id = ?2 AND status = 'open'",
        params![id.as_str(), account.as_str(), now],
    )
    .map_err(internal)?;
    Ok(())
}

pub(in crate::db) fn close(
    conn: &mut Connection,
    account: &AccountId,
    id: &InvestigationId,
    reason: &str,
    now: i64,
) -> Result<Option<(InvestigationRow, Option<BypassId>)>, MttrlyError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(internal)?;
    let closed = close_in(&tx, account, id, reason, now)?;
    tx.commit().map_err(internal)?;
    Ok(closed)
}

/// Marks the investigation's pending or active bypass expired when its time is up at `now`, so
/// a lapsed one never blocks a new request.
fn expire_live(
    conn: &Connection,
    account: &AccountId,
    investigation: &InvestigationId,
    now: i64,
) -> Result<(), MttrlyError> {
    conn.execute(
        "UPDATE investigation_bypasses SET status = 'expired'
         WHERE investigation_id = ?1 AND account_id = ?2 AND status IN ('pending', 'active') AND expires_at <= ?3",
        params![investigation.as_str(), account.as_str(), now],
    )
    .map_err(internal)?;
    Ok(())
}

pub(in crate::db) fn request_bypass(
    conn: &mut Connection,
    b: &BypassRow,
    expected_version: i64,
    now: i64,
) -> Result<Requested, MttrlyError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(internal)?;
    let Some(inv) = get(&tx, &b.account_id, &b.investigation_id)? else {
        return Ok(Requested::Missing);
    };
    if inv.status == InvestigationStatus::Closed {
        return Ok(Requested::Closed);
    }
    expire_live(&tx, &b.account_id, &b.investigation_id, now)?;
    if let Some(live) = latest_bypass(&tx, &b.account_id, &b.investigation_id)?
        && matches!(live.status, BypassStatus::Pending | BypassStatus::Active)
    {
        return Ok(Requested::AlreadyLive(Box::new(live)));
    }
    // The compare-and-swap: the version read before the checks above must still be current.
    let swapped = tx
        .execute(
            "UPDATE investigations SET version = version + 1, last_activity_at = MAX(last_activity_at, ?4)
             WHERE id = ?1 AND account_id = ?2 AND version = ?3 AND status = 'open'",
            params![b.investigation_id.as_str(), b.account_id.as_str(), expected_version, now],
        )
        .map_err(internal)?;
    if swapped == 0 {
        return Ok(Requested::Raced);
    }
    let encode = |v: serde_json::Result<String>| v.map_err(|_| corrupt("bypass scope"));
    tx.execute(
        "INSERT INTO investigation_bypasses (id, account_id, investigation_id, server_id, tools_json, pins_json, status,
             requested_at, requested_by_json, reason, duration_minutes, expires_at, max_actions, actions_used)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending', ?7, ?8, ?9, ?10, ?11, ?12, 0)",
        params![
            b.id.as_str(),
            b.account_id.as_str(),
            b.investigation_id.as_str(),
            b.server_id.as_str(),
            encode(serde_json::to_string(&b.scope.tools))?,
            encode(serde_json::to_string(&b.scope.patterns))?,
            b.requested_at,
            encode(serde_json::to_string(&b.requested_by))?,
            b.reason,
            b.scope.minutes,
            b.expires_at,
            b.scope.max_actions,
        ],
    )
    .map_err(internal)?;
    tx.commit().map_err(internal)?;
    Ok(Requested::Stored)
}

pub(in crate::db) fn grant(
    conn: &mut Connection,
    account: &AccountId,
    id: &BypassId,
    scope: &GrantScope,
    granter: &(UserId, String),
    now: i64,
) -> Result<Granted, MttrlyError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(internal)?;
    let encode = |v: serde_json::Result<String>| v.map_err(|_| corrupt("bypass scope"));
    let expires_at = now.saturating_add(i64::from(scope.minutes).saturating_mul(60_000));
    let investigation: Option<String> = tx
        .query_row(
            "UPDATE investigation_bypasses
             SET status = 'active', tools_json = ?4, pins_json = ?5, duration_minutes = ?6, max_actions = ?7,
                 granted_by = ?8, granted_by_name = ?9, granted_at = ?3, expires_at = ?10
             WHERE id = ?1 AND account_id = ?2 AND status = 'pending' AND expires_at > ?3
               AND EXISTS (SELECT 1 FROM investigations i
                           WHERE i.id = investigation_id AND i.account_id = ?2 AND i.status = 'open')
             RETURNING investigation_id",
            params![
                id.as_str(),
                account.as_str(),
                now,
                encode(serde_json::to_string(&scope.tools))?,
                encode(serde_json::to_string(&scope.patterns))?,
                scope.minutes,
                scope.max_actions,
                granter.0.as_str(),
                granter.1,
                expires_at,
            ],
            |r| r.get(0),
        )
        .optional()
        .map_err(internal)?;
    let Some(investigation) = investigation else {
        return Ok(Granted::NotPending);
    };
    tx.execute(
        "UPDATE investigations SET version = version + 1, last_activity_at = MAX(last_activity_at, ?3)
         WHERE id = ?1 AND account_id = ?2",
        params![investigation, account.as_str(), now],
    )
    .map_err(internal)?;
    let row = bypass(&tx, account, id)?.ok_or_else(|| corrupt("granted bypass"))?;
    tx.commit().map_err(internal)?;
    Ok(Granted::Active(Box::new(row)))
}

pub(in crate::db) fn revoke(
    conn: &mut Connection,
    account: &AccountId,
    investigation: &InvestigationId,
    now: i64,
) -> Result<Option<BypassRow>, MttrlyError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(internal)?;
    expire_live(&tx, account, investigation, now)?;
    if revoke_live(&tx, account, investigation, now)?.is_some() {
        tx.execute(
            "UPDATE investigations SET version = version + 1 WHERE id = ?1 AND account_id = ?2",
            params![investigation.as_str(), account.as_str()],
        )
        .map_err(internal)?;
    }
    let latest = latest_bypass(&tx, account, investigation)?;
    tx.commit().map_err(internal)?;
    Ok(latest)
}

/// Denies one pending bypass (a human's "no" to the request): revoked, conditional on it being
/// this account's, still pending and not lapsed at `now`. Unlike [`revoke`] it names the bypass,
/// not the investigation, so a "no" to one request can never revoke a later one. Returns whether
/// it was denied now, and the row as it stands.
pub(in crate::db) fn deny(
    conn: &mut Connection,
    account: &AccountId,
    id: &BypassId,
    now: i64,
) -> Result<(bool, Option<BypassRow>), MttrlyError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(internal)?;
    let investigation: Option<String> = tx
        .query_row(
            "UPDATE investigation_bypasses SET status = 'revoked', revoked_at = ?3
             WHERE id = ?1 AND account_id = ?2 AND status = 'pending' AND expires_at > ?3
             RETURNING investigation_id",
            params![id.as_str(), account.as_str(), now],
            |r| r.get(0),
        )
        .optional()
        .map_err(internal)?;
    if let Some(investigation) = &investigation {
        tx.execute(
            "UPDATE investigations SET version = version + 1 WHERE id = ?1 AND account_id = ?2",
            params![investigation, account.as_str()],
        )
        .map_err(internal)?;
    }
    let row = bypass(&tx, account, id)?;
    tx.commit().map_err(internal)?;
    Ok((investigation.is_some(), row))
}

/// Takes one slot of an active bypass for an action being created in the same transaction:
/// conditional on the bypass being this account's, of this investigation, active, not past its
/// time at `now`, with a slot left, and its investigation open. The last slot marks it
/// exhausted. Returns the slots left, or `None` when no slot was taken.
pub(in crate::db) fn take_slot(
    conn: &Connection,
    account: &AccountId,
    investigation: &InvestigationId,
    id: &BypassId,
    now: i64,
) -> Result<Option<u32>, MttrlyError> {
    conn.query_row(
        "UPDATE investigation_bypasses
         SET actions_used = actions_used + 1,
             status = CASE WHEN actions_used + 1 >= max_actions THEN 'exhausted' ELSE status END
         WHERE id = ?1 AND account_id = ?2 AND investigation_id = ?3 AND status = 'active'
           AND expires_at > ?4 AND actions_used < max_actions
           AND EXISTS (SELECT 1 FROM investigations i
                       WHERE i.id = ?3 AND i.account_id = ?2 AND i.status = 'open')
         RETURNING max_actions - actions_used",
        params![id.as_str(), account.as_str(), investigation.as_str(), now],
        |r| r.get::<_, u32>(0),
    )
    .optional()
    .map_err(internal)
}

/// Gives back the slot `action` took of its bypass, as part of the transaction that marks the
/// action failed before it reached the agent: one fewer used, and a bypass that this slot had
/// exhausted is active again (its time, investigation and revocation are untouched: a revoked
/// or expired bypass stays so, and dispatch checks the time anyway). Returns whether a slot came
/// back.
pub(in crate::db) fn return_slot(
    conn: &Connection,
    account: &AccountId,
    action: &ActionId,
) -> Result<bool, MttrlyError> {
    let changed = conn
        .execute(
            "UPDATE investigation_bypasses
             SET actions_used = actions_used - 1,
                 status = CASE WHEN status = 'exhausted' THEN 'active' ELSE status END
             WHERE account_id = ?2 AND actions_used > 0
               AND id = (SELECT bypass_id FROM actions WHERE id = ?1 AND account_id = ?2)",
            params![action.as_str(), account.as_str()],
        )
        .map_err(internal)?;
    Ok(changed == 1)
}

/// The bypass an action ran under, if it did.
pub(in crate::db) fn bypass_of_action(
    conn: &Connection,
    account: &AccountId,
    action: &ActionId,
) -> Result<Option<BypassRow>, MttrlyError> {
    conn.query_row(
        &format!(
            "SELECT {BYPASS_COLUMNS} FROM investigation_bypasses
             WHERE account_id = ?2 AND id = (SELECT bypass_id FROM actions WHERE id = ?1 AND account_id = ?2)"
        ),
        params![action.as_str(), account.as_str()],
        bypass_row,
    )
    .optional()
    .map_err(internal)?
    .transpose()
}

/// Links a just-inserted action to its investigation (and bypass) and renews the
/// investigation's activity: part of the action's create transaction.
pub(in crate::db) fn link_action(
    conn: &Connection,
    account: &AccountId,
    action: &ActionId,
    investigation: &InvestigationId,
    bypass: Option<&BypassId>,
    now: i64,
) -> Result<(), MttrlyError> {
    conn.execute(
        "UPDATE actions SET investigation_id = ?3, bypass_id = ?4 WHERE id = ?1 AND account_id = ?2",
        params![action.as_str(), account.as_str(), investigation.as_str(), bypass.map(BypassId::as_str)],
    )
    .map_err(internal)?;
    conn.execute(
        "UPDATE investigations SET last_activity_at = MAX(last_activity_at, ?3)
         WHERE id = ?1 AND account_id = ?2 AND status = 'open'",
        params![investigation.as_str(), account.as_str(), now],
    )
    .map_err(internal)?;
    Ok(())
}

pub(in crate::db) fn linked_actions(
    conn: &Connection,
    account: &AccountId,
    investigation: &InvestigationId,
    limit: u32,
) -> Result<Vec<LinkedAction>, MttrlyError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT id, status, description, bypass_id, created_at FROM actions
             WHERE account_id = ?1 AND investigation_id = ?2 ORDER BY created_at DESC, id DESC LIMIT ?3",
        )
        .map_err(internal)?;
    let rows = stmt
        .query_map(params![account.as_str(), investigation.as_str(), limit], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, i64>(4)?,
            ))
        })
        .map_err(internal)?;
    let mut out = Vec::new();
    for row in rows {
        let (id, status, description, bypass_id, created_at) = row.map_err(internal)?;
        out.push(LinkedAction {
            id: ActionId::parse(&id).map_err(|_| corrupt("action id"))?,
            status,
            description,
            bypass_id: bypass_id.map(|b| BypassId::parse(&b)).transpose().map_err(|_| corrupt("bypass id"))?,
            created_at,
        });
    }
    Ok(out)
}

pub(in crate::db) fn sweep(conn: &mut Connection, now: i64, idle_ms: i64) -> Result<Vec<Swept>, MttrlyError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(internal)?;
    let idle: Vec<InvestigationRow> = {
        let mut stmt = tx
            .prepare_cached(&format!(
                "SELECT {INVESTIGATION_COLUMNS} FROM investigations
                 WHERE status = 'open' AND last_activity_at <= ?1 LIMIT 1000"
            ))
            .map_err(internal)?;
        stmt.query_map(params![now.saturating_sub(idle_ms)], investigation)
            .map_err(internal)?
            .map(|r| r.map_err(internal).and_then(|r| r))
            .collect::<Result<_, _>>()?
    };
    let mut swept = Vec::new();
    for row in idle {
        if let Some((closed, revoked)) = close_in(&tx, &row.account_id, &row.id, "idle", now)? {
            swept.push(Swept::Closed(closed, revoked));
        }
    }
    let lapsed: Vec<BypassRow> = {
        let mut stmt = tx
            .prepare_cached(&format!(
                "UPDATE investigation_bypasses SET status = 'expired'
                 WHERE status IN ('pending', 'active') AND expires_at <= ?1
                 RETURNING {BYPASS_COLUMNS}"
            ))
            .map_err(internal)?;
        stmt.query_map(params![now], bypass_row)
            .map_err(internal)?
            .map(|r| r.map_err(internal).and_then(|r| r))
            .collect::<Result<_, _>>()?
    };
    swept.extend(lapsed.into_iter().map(Swept::Expired));
    tx.commit().map_err(internal)?;
    Ok(swept)
}

pub(in crate::db) fn alert_severity(
    conn: &Connection,
    account: &AccountId,
    alert: &AlertId,
    server: &ServerId,
) -> Result<Option<Severity>, MttrlyError> {
    let severity: Option<String> = conn
        .query_row(
            "SELECT severity FROM alerts WHERE id = ?1 AND account_id = ?2 AND server_id = ?3",
            params![alert.as_str(), account.as_str(), server.as_str()],
            |r| r.get(0),
        )
        .optional()
        .map_err(internal)?;
    Ok(severity.as_deref().map(super::alerts::parse_severity))
}
