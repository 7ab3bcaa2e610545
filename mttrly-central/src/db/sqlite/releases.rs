//! Signed agent releases: the SQL.

use mttrly_core::MttrlyError;
use mttrly_core::ids::AccountId;
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use super::internal;
use crate::db::releases::{ReleaseRow, Stored};

const COLUMNS: &str = "target, version, sha256, size, min_central, expires_at, signing_key_id, root_key_id, bundle_json, published_at, published_by";

fn row(r: &Row<'_>) -> rusqlite::Result<ReleaseRow> {
    Ok(ReleaseRow {
        target: r.get(0)?,
        version: r.get(1)?,
        sha256: r.get(2)?,
        size: u64::try_from(r.get::<_, i64>(3)?).unwrap_or(0),
        min_central: r.get(4)?,
        expires_at: r.get(5)?,
        signing_key_id: r.get(6)?,
        root_key_id: r.get(7)?,
        bundle_json: r.get(8)?,
        published_at: r.get(9)?,
        published_by: r.get(10)?,
    })
}

pub(in crate::db) fn put(conn: &mut Connection, account: &AccountId, new: &ReleaseRow) -> Result<Stored, MttrlyError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(internal)?;
    let existing: Option<(String, String)> = tx
        .query_row(
            "SELECT sha256, bundle_json FROM releases WHERE account_id = ?1 AND target = ?2 AND version = ?3",
            params![account.as_str(), new.target, new.version],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(internal)?;
    let stored = match existing {
        Some((sha256, _)) if sha256 != new.sha256 => return Ok(Stored::Conflict { sha256 }),
        Some((_, bundle)) if bundle == new.bundle_json => return Ok(Stored::Unchanged),
        _ => Stored::Written,
    };
    tx.execute(
        &format!("INSERT OR REPLACE INTO releases (account_id, {COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"),
        params![
            account.as_str(),
            new.target,
            new.version,
            new.sha256,
            i64::try_from(new.size).unwrap_or(i64::MAX),
            new.min_central,
            new.expires_at,
            new.signing_key_id,
            new.root_key_id,
            new.bundle_json,
            new.published_at,
            new.published_by,
        ],
    )
    .map_err(internal)?;
    tx.commit().map_err(internal)?;
    Ok(stored)
}

pub(in crate::db) fn list(
    conn: &Connection,
    account: &AccountId,
    target: Option<&str>,
) -> Result<Vec<ReleaseRow>, MttrlyError> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM releases WHERE account_id = ?1 AND (?2 IS NULL OR target = ?2) LIMIT 10000"
        ))
        .map_err(internal)?;
    let rows = stmt.query_map(params![account.as_str(), target], row).map_err(internal)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(internal)
}

pub(in crate::db) fn has_binary(conn: &Connection, account: &AccountId, sha256: &str) -> Result<bool, MttrlyError> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM releases WHERE account_id = ?1 AND sha256 = ?2)",
        params![account.as_str(), sha256],
        |r| r.get(0),
    )
    .map_err(internal)
}
