//! The servers' metrics history: the SQL (the format is `db::metrics`'s).

use mttrly_core::MttrlyError;
use mttrly_core::ids::{AccountId, ServerId};
use rusqlite::{Connection, params};

use super::internal;
use crate::db::metrics::{HOUR_MS, MINUTE_MS, MetricSample, SAMPLE_SQL, decode};

/// Appends a sample taken at `at_ms` for every live server last seen within a minute before it,
/// from the latest metrics stored; called inside the heartbeat flush's transaction.
pub(in crate::db) fn sample(conn: &Connection, at_ms: i64) -> Result<usize, MttrlyError> {
    let hour = at_ms.div_euclid(HOUR_MS);
    let minute = at_ms.rem_euclid(HOUR_MS) / MINUTE_MS;
    conn.prepare_cached(SAMPLE_SQL)
        .and_then(|mut stmt| stmt.execute(params![hour, minute, at_ms - MINUTE_MS]))
        .map_err(internal)
}

/// The samples of the account's server `id` at or after `since_ms`, oldest first.
pub(in crate::db) fn history(
    conn: &Connection,
    account: &AccountId,
    id: &ServerId,
    since_ms: i64,
) -> Result<Vec<MetricSample>, MttrlyError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT m.hour, m.samples FROM server_metrics m JOIN servers s ON s.id = m.server_id
             WHERE m.server_id = ?1 AND s.account_id = ?2 AND m.hour >= ?3 ORDER BY m.hour",
        )
        .map_err(internal)?;
    let rows = stmt
        .query_map(params![id.as_str(), account.as_str(), since_ms.div_euclid(HOUR_MS)], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
        })
        .map_err(internal)?;
    let mut out = Vec::new();
    for row in rows {
        let (hour, samples) = row.map_err(internal)?;
        decode(hour, &samples, &mut out);
    }
    out.retain(|s| s.at_ms >= since_ms);
    Ok(out)
}

/// Deletes every hour row that ended before `before_ms`. Sought server by server through the
/// `(server_id, hour)` index, so the purge reads only what it deletes.
pub(in crate::db) fn purge(conn: &Connection, before_ms: i64) -> Result<usize, MttrlyError> {
    conn.execute(
        "DELETE FROM server_metrics WHERE server_id IN (SELECT id FROM servers) AND hour < ?1",
        params![before_ms.div_euclid(HOUR_MS)],
    )
    .map_err(internal)
}
