//! Alerts: the SQL.

use mttrly_core::ids::{AccountId, AlertId, ServerId};
use mttrly_core::tools::common::Severity;
use mttrly_core::tools::servers::{Alert, AlertStatus, UnmatchedAlert};
use mttrly_core::{MttrlyError, Plan};
use rusqlite::{Connection, Row, TransactionBehavior, params};

use super::internal;
use crate::db::alerts::{AlertChange, AlertFilter, InboundApplied, InboundChange, NewAlert, NewUnmatchedAlert};
use crate::db::timestamp;

/// A stored severity (an unknown word reads as the mildest).
pub(super) fn parse_severity(s: &str) -> Severity {
    match s {
        "critical" => Severity::Critical,
        "warning" => Severity::Warning,
        _ => Severity::Info,
    }
}

/// Inserts an open alert.
pub(in crate::db) fn open(conn: &Connection, alert: &NewAlert) -> Result<(), MttrlyError> {
    conn.execute(
        "INSERT INTO alerts (id, account_id, server_id, rule, subject, severity, status, summary, opened_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'open', ?7, ?8)",
        params![
            alert.id.as_str(),
            alert.account_id.as_str(),
            alert.server_id.as_str(),
            alert.rule,
            alert.subject,
            alert.severity.as_str(),
            alert.summary,
            alert.opened_at
        ],
    )
    .map_err(internal)?;
    Ok(())
}

/// Resolves an open alert.
pub(in crate::db) fn resolve(conn: &Connection, id: &AlertId, at: i64) -> Result<(), MttrlyError> {
    conn.execute(
        "UPDATE alerts SET status = 'resolved', resolved_at = ?2 WHERE id = ?1 AND status = 'open'",
        params![id.as_str(), at],
    )
    .map_err(internal)?;
    Ok(())
}

/// Whether an alert under this key (matched: rule and subject; unmatched: source and
/// fingerprint) was resolved at or after `at`: an open from before that is a stale redelivery.
/// Both queries use the partial indexes of resolved rows (migration 16).
const STALE_MATCHED: &str = "SELECT EXISTS (SELECT 1 FROM alerts WHERE account_id = ?1 AND rule = ?2 AND subject = ?3
                               AND status = 'resolved' AND resolved_at >= ?4)";
const STALE_UNMATCHED: &str = "SELECT EXISTS (SELECT 1 FROM unmatched_alerts
                                 WHERE account_id = ?1 AND source = ?2 AND fingerprint = ?3
                                   AND status = 'resolved' AND resolved_at >= ?4)";

fn stale(conn: &Connection, query: &str, account: &AccountId, key: (&str, &str), at: i64) -> Result<bool, MttrlyError> {
    conn.prepare_cached(query)
        .and_then(|mut stmt| stmt.query_row(params![account.as_str(), key.0, key.1, at], |r| r.get(0)))
        .map_err(internal)
}

/// Opens an alert unless one with the same (server, rule, subject) is already open (the partial
/// unique index decides, so two deliveries racing each other still open one), or one under the
/// same key was resolved at or after this event's time (a stale redelivery: a webhook retried
/// after the event that resolved it). Returns whether it was opened.
fn open_if_new(conn: &Connection, account: &AccountId, alert: &NewAlert) -> Result<bool, MttrlyError> {
    if stale(conn, STALE_MATCHED, account, (&alert.rule, &alert.subject), alert.opened_at)? {
        return Ok(false);
    }
    let n = conn
        .prepare_cached(
            "INSERT INTO alerts (id, account_id, server_id, rule, subject, severity, status, summary, opened_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'open', ?7, ?8) ON CONFLICT DO NOTHING",
        )
        .and_then(|mut stmt| {
            stmt.execute(params![
                alert.id.as_str(),
                account.as_str(),
                alert.server_id.as_str(),
                alert.rule,
                alert.subject,
                alert.severity.as_str(),
                alert.summary,
                alert.opened_at
            ])
        })
        .map_err(internal)?;
    Ok(n > 0)
}

/// Keeps an alert for no known server unless the same (source, fingerprint) is open, or was
/// resolved at or after this event's time (a stale redelivery).
fn open_unmatched_if_new(conn: &Connection, account: &AccountId, a: &NewUnmatchedAlert) -> Result<bool, MttrlyError> {
    if stale(conn, STALE_UNMATCHED, account, (&a.source, &a.fingerprint), a.opened_at)? {
        return Ok(false);
    }
    let labels = serde_json::to_string(&a.labels)
        .map_err(|e| MttrlyError::new(mttrly_core::ErrorCode::InternalError, format!("alert labels: {e}")))?;
    let n = conn
        .prepare_cached(
            "INSERT INTO unmatched_alerts (id, account_id, source, fingerprint, name, host, severity, status, summary,
                 labels, opened_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'open', ?8, ?9, ?10) ON CONFLICT DO NOTHING",
        )
        .and_then(|mut stmt| {
            stmt.execute(params![
                a.id.as_str(),
                account.as_str(),
                a.source,
                a.fingerprint,
                a.name,
                a.host,
                a.severity.as_str(),
                a.summary,
                labels,
                a.opened_at
            ])
        })
        .map_err(internal)?;
    Ok(n > 0)
}

/// Resolves the account's open alerts under this key, matched and unmatched. Returns each one
/// resolved with its server (none for unmatched ones).
fn resolve_matching(
    conn: &Connection,
    account: &AccountId,
    (source, rule, subject): (&str, &str, &str),
    at: i64,
) -> Result<Vec<(AlertId, Option<ServerId>)>, MttrlyError> {
    let mut out = Vec::new();
    let mut stmt = conn
        .prepare_cached(
            "UPDATE alerts SET status = 'resolved', resolved_at = ?4
             WHERE account_id = ?1 AND rule = ?2 AND subject = ?3 AND status = 'open' RETURNING id, server_id",
        )
        .map_err(internal)?;
    let rows = stmt
        .query_map(params![account.as_str(), rule, subject, at], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })
        .map_err(internal)?;
    for r in rows {
        let (id, server) = r.map_err(internal)?;
        if let (Ok(id), Ok(server)) = (AlertId::parse(&id), ServerId::parse(&server)) {
            out.push((id, Some(server)));
        }
    }
    let mut stmt = conn
        .prepare_cached(
            "UPDATE unmatched_alerts SET status = 'resolved', resolved_at = ?4
             WHERE account_id = ?1 AND source = ?2 AND fingerprint = ?3 AND status = 'open' RETURNING id",
        )
        .map_err(internal)?;
    let rows =
        stmt.query_map(params![account.as_str(), source, subject, at], |r| r.get::<_, String>(0)).map_err(internal)?;
    for r in rows {
        if let Ok(id) = AlertId::parse(&r.map_err(internal)?) {
            out.push((id, None));
        }
    }
    Ok(out)
}

/// Applies one monitoring delivery's changes in order, in one IMMEDIATE transaction.
pub(in crate::db) fn apply_inbound(
    conn: &mut Connection,
    account: &AccountId,
    changes: &[InboundChange],
) -> Result<Vec<InboundApplied>, MttrlyError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(internal)?;
    let mut out = Vec::with_capacity(changes.len());
    for change in changes {
        out.push(match change {
            InboundChange::Open(alert) => InboundApplied::Opened(open_if_new(&tx, account, alert)?),
            InboundChange::OpenUnmatched(alert) => InboundApplied::Opened(open_unmatched_if_new(&tx, account, alert)?),
            InboundChange::Resolve { source, rule, subject, at } => {
                InboundApplied::Resolved(resolve_matching(&tx, account, (source, rule, subject), *at)?)
            }
        });
    }
    tx.commit().map_err(internal)?;
    Ok(out)
}

/// The account's unmatched alerts, newest first.
pub(in crate::db) fn list_unmatched(
    conn: &Connection,
    account: &AccountId,
    filter: &AlertFilter,
) -> Result<Vec<UnmatchedAlert>, MttrlyError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT id, source, name, host, severity, status, summary, labels, opened_at, resolved_at
             FROM unmatched_alerts
             WHERE account_id = ?1 AND (?2 IS NULL OR severity = ?2) AND (?3 IS NULL OR status = ?3)
               AND opened_at >= ?4
             ORDER BY opened_at DESC, id DESC LIMIT ?5",
        )
        .map_err(internal)?;
    let rows = stmt
        .query_map(
            params![
                account.as_str(),
                filter.severity.map(Severity::as_str),
                status_word(filter.status),
                filter.since,
                filter.limit
            ],
            |r| {
                let id: String = r.get(0)?;
                let labels: String = r.get(7)?;
                let Ok(alert_id) = AlertId::parse(&id) else {
                    return Ok(None);
                };
                Ok(Some(UnmatchedAlert {
                    alert_id,
                    source: r.get(1)?,
                    name: r.get(2)?,
                    host: r.get(3)?,
                    severity: parse_severity(&r.get::<_, String>(4)?),
                    status: if r.get::<_, String>(5)? == "open" { AlertStatus::Open } else { AlertStatus::Resolved },
                    summary: r.get(6)?,
                    labels: serde_json::from_str(&labels).unwrap_or_default(),
                    opened_at: timestamp(r.get(8)?),
                    resolved_at: r.get::<_, Option<i64>>(9)?.map(timestamp),
                }))
            },
        )
        .map_err(internal)?;
    let mut out = Vec::new();
    for r in rows {
        if let Some(alert) = r.map_err(internal)? {
            out.push(alert);
        }
    }
    Ok(out)
}

fn status_word(status: Option<AlertStatus>) -> Option<&'static str> {
    status.map(|s| match s {
        AlertStatus::Open => "open",
        AlertStatus::Resolved => "resolved",
    })
}

/// Every open alert: `(server, rule, subject, alert id)`, to rebuild the engine's state at start.
pub(in crate::db) fn all_open(conn: &Connection) -> Result<Vec<(ServerId, String, String, AlertId)>, MttrlyError> {
    let mut stmt =
        conn.prepare("SELECT server_id, rule, subject, id FROM alerts WHERE status = 'open'").map_err(internal)?;
    let rows = stmt
        .query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, String>(3)?))
        })
        .map_err(internal)?;
    let mut out = Vec::new();
    for r in rows {
        let (server, rule, subject, id) = r.map_err(internal)?;
        if let (Ok(server), Ok(id)) = (ServerId::parse(&server), AlertId::parse(&id)) {
            out.push((server, rule, subject, id));
        }
    }
    Ok(out)
}

fn alert_row(r: &Row<'_>) -> rusqlite::Result<Option<Alert>> {
    let id: String = r.get(0)?;
    let server: String = r.get(1)?;
    let status: String = r.get(5)?;
    let (Ok(alert_id), Ok(server_id)) = (AlertId::parse(&id), ServerId::parse(&server)) else {
        return Ok(None);
    };
    Ok(Some(Alert {
        alert_id,
        server_id,
        rule: r.get(2)?,
        severity: parse_severity(&r.get::<_, String>(4)?),
        status: if status == "open" { AlertStatus::Open } else { AlertStatus::Resolved },
        summary: r.get(6)?,
        opened_at: timestamp(r.get(7)?),
        resolved_at: r.get::<_, Option<i64>>(8)?.map(timestamp),
    }))
}

/// The account's alerts, newest first.
pub(in crate::db) fn list(
    conn: &Connection,
    account: &AccountId,
    filter: &AlertFilter,
) -> Result<Vec<Alert>, MttrlyError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT id, server_id, rule, subject, severity, status, summary, opened_at, resolved_at FROM alerts
             WHERE account_id = ?1 AND (?2 IS NULL OR server_id = ?2) AND (?3 IS NULL OR severity = ?3)
               AND (?4 IS NULL OR status = ?4) AND opened_at >= ?5
             ORDER BY opened_at DESC, id DESC LIMIT ?6",
        )
        .map_err(internal)?;
    let status = status_word(filter.status);
    let rows = stmt
        .query_map(
            params![
                account.as_str(),
                filter.server_id.as_ref().map(ServerId::as_str),
                filter.severity.map(Severity::as_str),
                status,
                filter.since,
                filter.limit
            ],
            alert_row,
        )
        .map_err(internal)?;
    let mut out = Vec::new();
    for r in rows {
        if let Some(alert) = r.map_err(internal)? {
            out.push(alert);
        }
    }
    Ok(out)
}

/// Deletes resolved alerts older than each account's retention. Returns how many were removed.
pub(in crate::db) fn purge(
    conn: &Connection,
    now: i64,
    retention_ms_for: impl Fn(Option<Plan>) -> i64,
) -> Result<usize, MttrlyError> {
    let mut stmt = conn.prepare("SELECT id, plan FROM accounts").map_err(internal)?;
    let accounts: Vec<(String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .map_err(internal)?
        .collect::<Result<_, _>>()
        .map_err(internal)?;
    let mut removed = 0;
    for (account, plan) in accounts {
        let cutoff = now - retention_ms_for(plan.parse().ok());
        removed += conn
            .execute(
                "DELETE FROM alerts WHERE account_id = ?1 AND status = 'resolved' AND opened_at < ?2",
                params![account, cutoff],
            )
            .map_err(internal)?;
        removed += conn
            .execute(
                "DELETE FROM unmatched_alerts WHERE account_id = ?1 AND status = 'resolved' AND opened_at < ?2",
                params![account, cutoff],
            )
            .map_err(internal)?;
        removed += super::audit::purge(conn, &account, cutoff)?;
    }
    Ok(removed)
}

/// Applies the alert engine's changes in order, in one IMMEDIATE transaction.
pub(in crate::db) fn apply(conn: &mut Connection, changes: &[AlertChange]) -> Result<(), MttrlyError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(internal)?;
    for change in changes {
        match change {
            AlertChange::Open(alert) => open(&tx, alert)?,
            AlertChange::Resolve(id, at) => resolve(&tx, id, *at)?,
        }
    }
    tx.commit().map_err(internal)
}
