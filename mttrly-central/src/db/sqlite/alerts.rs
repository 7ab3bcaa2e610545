//! Alerts: the SQL.

use mttrly_core::ids::{AccountId, AlertId, ServerId};
use mttrly_core::tools::common::Severity;
use mttrly_core::tools::servers::{Alert, AlertStatus};
use mttrly_core::{MttrlyError, Plan};
use rusqlite::{Connection, Row, TransactionBehavior, params};

use super::internal;
use crate::db::alerts::{AlertChange, AlertFilter, NewAlert};
use crate::db::timestamp;

fn parse_severity(s: &str) -> Severity {
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

/// Opens an alert unless one with the same (server, rule, subject) is already open (the partial
/// unique index decides, so two deliveries racing each other still open one). Returns whether it
/// was opened.
pub(in crate::db) fn open_if_new(conn: &Connection, alert: &NewAlert) -> Result<bool, MttrlyError> {
    let n = conn
        .execute(
            "INSERT INTO alerts (id, account_id, server_id, rule, subject, severity, status, summary, opened_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'open', ?7, ?8) ON CONFLICT DO NOTHING",
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
    Ok(n > 0)
}

/// Resolves the account's open alerts with this rule and subject. Returns `(alert, server)` for
/// each one resolved (none when nothing was open).
pub(in crate::db) fn resolve_matching(
    conn: &Connection,
    account: &AccountId,
    rule: &str,
    subject: &str,
    at: i64,
) -> Result<Vec<(AlertId, ServerId)>, MttrlyError> {
    let mut stmt = conn
        .prepare(
            "UPDATE alerts SET status = 'resolved', resolved_at = ?4
             WHERE account_id = ?1 AND rule = ?2 AND subject = ?3 AND status = 'open' RETURNING id, server_id",
        )
        .map_err(internal)?;
    let rows = stmt
        .query_map(params![account.as_str(), rule, subject, at], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })
        .map_err(internal)?;
    let mut out = Vec::new();
    for r in rows {
        let (id, server) = r.map_err(internal)?;
        if let (Ok(id), Ok(server)) = (AlertId::parse(&id), ServerId::parse(&server)) {
            out.push((id, server));
        }
    }
    Ok(out)
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
    let status = filter.status.map(|s| match s {
        AlertStatus::Open => "open",
        AlertStatus::Resolved => "resolved",
    });
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
