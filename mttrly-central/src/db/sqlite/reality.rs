//! The latest service-reality snapshot per server: the SQL.

use mttrly_core::MttrlyError;
use mttrly_core::ids::{AccountId, ServerId};
use rusqlite::{Connection, OptionalExtension, params};

use super::internal;

/// Stores (replaces) a server's snapshot.
pub(in crate::db) fn put(
    conn: &Connection,
    account: &AccountId,
    server: &ServerId,
    at_ms: i64,
    json: &str,
) -> Result<(), MttrlyError> {
    conn.execute(
        "INSERT INTO service_reality (server_id, account_id, captured_at, snapshot_json) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (server_id) DO UPDATE SET captured_at = excluded.captured_at, snapshot_json = excluded.snapshot_json",
        params![server.as_str(), account.as_str(), at_ms, json],
    )
    .map_err(internal)?;
    Ok(())
}

/// A server's snapshot JSON, scoped to the account.
pub(in crate::db) fn get(
    conn: &Connection,
    account: &AccountId,
    server: &ServerId,
) -> Result<Option<String>, MttrlyError> {
    conn.query_row(
        "SELECT snapshot_json FROM service_reality WHERE server_id = ?1 AND account_id = ?2",
        params![server.as_str(), account.as_str()],
        |r| r.get(0),
    )
    .optional()
    .map_err(internal)
}
