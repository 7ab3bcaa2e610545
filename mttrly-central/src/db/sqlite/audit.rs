//! Reading the audit log (writes belong to `crate::audit::writer`): the SQL.

use mttrly_core::MttrlyError;
use mttrly_core::ids::{AccountId, ServerId, UserId};
use mttrly_core::tools::actions::AuditEntry;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::internal;
use crate::audit::chain::{self, ChainedRow, Verification};
use crate::db::audit::AuditFilter;
use crate::db::timestamp;

fn entry(r: &Row<'_>) -> rusqlite::Result<Option<AuditEntry>> {
    let seq: i64 = r.get(0)?;
    let server: Option<String> = r.get(2)?;
    let actor: String = r.get(3)?;
    let source: String = r.get(4)?;
    let kind: String = r.get(5)?;
    let parameters: String = r.get(7)?;
    let outcome: String = r.get(8)?;
    let parsed = (|| {
        Some(AuditEntry {
            seq: u64::try_from(seq).ok()?,
            at: timestamp(r.get(1).ok()?),
            server_id: match server {
                Some(s) => Some(ServerId::parse(&s).ok()?),
                None => None,
            },
            actor: serde_json::from_str(&actor).ok()?,
            source: source.parse().ok()?,
            kind: serde_json::from_value(serde_json::Value::String(kind)).ok()?,
            subject: r.get(6).ok()?,
            parameters: serde_json::from_str(&parameters).ok()?,
            outcome: serde_json::from_str(&outcome).ok()?,
            duration_ms: r.get::<_, Option<i64>>(9).ok()?.map(|d| u64::try_from(d).unwrap_or(0)),
        })
    })();
    Ok(parsed)
}

const COLUMNS: &str =
    "seq, at, server_id, actor_json, source, kind, subject, parameters_json, outcome_json, duration_ms";

/// The account's `AddUser` and `InviteUser` rows naming `user`, newest first, at or before
/// `until_ms` (the subject index narrows to those two subjects; the user is matched in the
/// parameters, where both events record it).
pub(in crate::db) fn introductions(
    conn: &Connection,
    account: &AccountId,
    user: &UserId,
    until_ms: i64,
) -> Result<Vec<AuditEntry>, MttrlyError> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM audit_log
             WHERE account_id = ?1 AND subject IN ('AddUser', 'InviteUser') AND at <= ?3
               AND json_extract(parameters_json, '$.user_id') = ?2
             ORDER BY seq DESC"
        ))
        .map_err(internal)?;
    let rows = stmt.query_map(params![account.as_str(), user.as_str(), until_ms], entry).map_err(internal)?;
    let mut out = Vec::new();
    for r in rows {
        if let Some(e) = r.map_err(internal)? {
            out.push(e);
        }
    }
    Ok(out)
}

/// The account's audit rows, newest first.
pub(in crate::db) fn list(
    conn: &Connection,
    account: &AccountId,
    filter: &AuditFilter,
) -> Result<Vec<AuditEntry>, MttrlyError> {
    let before = filter.before_seq.map_or(i64::MAX, |s| i64::try_from(s).unwrap_or(i64::MAX));
    // One statement per filter shape, so SQLite always walks the matching index backwards.
    let (sql, key): (String, Option<String>) = match (&filter.server_id, &filter.subject) {
        (Some(server), _) => (
            format!(
                "SELECT {COLUMNS} FROM audit_log WHERE account_id = ?1 AND server_id = ?2 AND seq < ?3
                 {} ORDER BY seq DESC LIMIT ?4",
                if filter.subject.is_some() { "AND subject = ?5" } else { "" }
            ),
            Some(server.to_string()),
        ),
        (None, Some(subject)) => (
            format!(
                "SELECT {COLUMNS} FROM audit_log WHERE account_id = ?1 AND subject = ?2 AND seq < ?3
                 ORDER BY seq DESC LIMIT ?4"
            ),
            Some(subject.clone()),
        ),
        (None, None) => (
            format!("SELECT {COLUMNS} FROM audit_log WHERE account_id = ?1 AND seq < ?3 ORDER BY seq DESC LIMIT ?4"),
            None,
        ),
    };
    let mut stmt = conn.prepare_cached(&sql).map_err(internal)?;
    let rows = match (&filter.server_id, &filter.subject) {
        (Some(_), Some(subject)) => {
            stmt.query_map(params![account.as_str(), key, before, filter.limit, subject], entry)
        }
        (None, None) => stmt.query_map(params![account.as_str(), Option::<String>::None, before, filter.limit], entry),
        _ => stmt.query_map(params![account.as_str(), key, before, filter.limit], entry),
    }
    .map_err(internal)?;
    let mut out = Vec::new();
    for r in rows {
        if let Some(e) = r.map_err(internal)? {
            out.push(e);
        }
    }
    Ok(out)
}

/// Re-computes the account's whole chain, streaming rows in order.
pub(in crate::db) fn verify(conn: &Connection, account: &AccountId) -> Result<Verification, MttrlyError> {
    let head = conn
        .query_row("SELECT seq, hash FROM audit_heads WHERE account_id = ?1", params![account.as_str()], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?))
        })
        .optional()
        .map_err(internal)?
        .map(|(seq, hash)| {
            (u64::try_from(seq).unwrap_or(0), <[u8; 32]>::try_from(hash.as_slice()).unwrap_or_default())
        });
    let mut stmt = conn
        .prepare(
            "SELECT seq, at, server_id, actor_json, source, kind, subject, parameters_json, outcome_json, duration_ms,
             prev_hash, hash FROM audit_log WHERE account_id = ?1 ORDER BY seq",
        )
        .map_err(internal)?;
    let rows = stmt
        .query_map(params![account.as_str()], |r| {
            let bytes = |i: usize| -> rusqlite::Result<[u8; 32]> {
                let v: Vec<u8> = r.get(i)?;
                Ok(<[u8; 32]>::try_from(v.as_slice()).unwrap_or_default())
            };
            Ok((
                ChainedRow {
                    seq: u64::try_from(r.get::<_, i64>(0)?).unwrap_or(0),
                    at: r.get(1)?,
                    server_id: r.get(2)?,
                    actor_json: r.get(3)?,
                    source: r.get(4)?,
                    kind: r.get(5)?,
                    subject: r.get(6)?,
                    parameters_json: r.get(7)?,
                    outcome_json: r.get(8)?,
                    duration_ms: r.get(9)?,
                },
                bytes(10)?,
                bytes(11)?,
            ))
        })
        .map_err(internal)?;
    let mut failure = None;
    let verification = chain::verify(
        account.as_str(),
        rows.map_while(|r| match r {
            Ok(row) => Some(row),
            Err(e) => {
                failure = Some(e);
                None
            }
        }),
        head,
    );
    match failure {
        Some(e) => Err(internal(e)),
        None => Ok(verification),
    }
}

/// Deletes rows older than `cutoff` (ms) for one account. The chain stays verifiable: the oldest
/// remaining row's stored link is the new anchor.
pub(in crate::db) fn purge(conn: &Connection, account: &str, cutoff: i64) -> Result<usize, MttrlyError> {
    conn.execute("DELETE FROM audit_log WHERE account_id = ?1 AND at < ?2", params![account, cutoff]).map_err(internal)
}
