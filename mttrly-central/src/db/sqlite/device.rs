//! Device logins: the SQL. The device code is stored as its SHA-256 only; the token a poll
//! delivers is drawn by the caller and stored here as an ordinary human API token (hash only).

use mttrly_core::ids::{AccountId, UserId};
use mttrly_core::{MttrlyError, Role, ToolSurface};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::internal;
use crate::db::device::{Inserted, Issued, NewDeviceLogin, PendingLogin, Polled, TokenToIssue};

/// Logins that ended longer ago than this are deleted when a new one starts (their user codes
/// become free again; a poll of one then finds it unknown).
const KEEP_ENDED_MS: i64 = 3_600_000;

/// How much a `slow_down` adds to the interval (RFC 8628 §3.5: 5 seconds).
const SLOW_DOWN_STEP_SECS: i64 = 5;

/// Stores a login (see `DeviceLogins::insert`).
pub(in crate::db) fn insert(
    conn: &mut Connection,
    login: &NewDeviceLogin,
    max_pending: i64,
) -> Result<Inserted, MttrlyError> {
    let now = login.created_at;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(internal)?;
    tx.execute("DELETE FROM device_logins WHERE expires_at < ?1", params![now - KEEP_ENDED_MS]).map_err(internal)?;
    let taken = tx
        .query_row("SELECT 1 FROM device_logins WHERE user_code = ?1", params![login.user_code], |_| Ok(()))
        .optional()
        .map_err(internal)?
        .is_some();
    if taken {
        return Ok(Inserted::CodeTaken);
    }
    let waiting: i64 = tx
        .query_row(
            "SELECT COUNT(*) FROM device_logins WHERE status = 'pending' AND expires_at > ?1",
            params![now],
            |r| r.get(0),
        )
        .map_err(internal)?;
    if waiting >= max_pending {
        return Ok(Inserted::TooMany);
    }
    tx.execute(
        "INSERT INTO device_logins (device_hash, user_code, client_name, client_host, peer, created_at, expires_at,
         interval_secs, status) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'pending')",
        params![
            login.device_hash.as_slice(),
            login.user_code,
            login.client_name,
            login.client_host,
            login.peer,
            login.created_at,
            login.expires_at,
            login.interval_secs
        ],
    )
    .map_err(internal)?;
    tx.commit().map_err(internal)?;
    Ok(Inserted::Stored)
}

/// The pending, unexpired login with this user code.
pub(in crate::db) fn pending(
    conn: &Connection,
    user_code: &str,
    now: i64,
) -> Result<Option<PendingLogin>, MttrlyError> {
    conn.query_row(
        "SELECT user_code, client_name, client_host, peer, created_at, expires_at FROM device_logins
         WHERE user_code = ?1 AND status = 'pending' AND expires_at > ?2",
        params![user_code, now],
        |r| {
            Ok(PendingLogin {
                user_code: r.get(0)?,
                client_name: r.get(1)?,
                client_host: r.get(2)?,
                peer: r.get(3)?,
                created_at: r.get(4)?,
                expires_at: r.get(5)?,
            })
        },
    )
    .optional()
    .map_err(internal)
}

/// Whether a login has this device code's hash.
pub(in crate::db) fn known(conn: &Connection, device_hash: &[u8; 32]) -> Result<bool, MttrlyError> {
    conn.query_row("SELECT 1 FROM device_logins WHERE device_hash = ?1", params![device_hash.as_slice()], |_| Ok(()))
        .optional()
        .map(|row| row.is_some())
        .map_err(internal)
}

/// Decides a pending login as a living user of `account` (one conditional UPDATE).
pub(in crate::db) fn decide(
    conn: &Connection,
    user_code: &str,
    account: &AccountId,
    user: &UserId,
    approve: bool,
    now: i64,
) -> Result<bool, MttrlyError> {
    let changed = conn
        .execute(
            "UPDATE device_logins SET status = ?5, account_id = ?2, user_id = ?3, decided_at = ?4
             WHERE user_code = ?1 AND status = 'pending' AND expires_at > ?4
               AND EXISTS (SELECT 1 FROM users u WHERE u.id = ?3 AND u.account_id = ?2 AND u.removed_at IS NULL)",
            params![user_code, account.as_str(), user.as_str(), now, if approve { "approved" } else { "denied" }],
        )
        .map_err(internal)?;
    Ok(changed == 1)
}

/// A login's row as a poll reads it.
struct PollRow {
    status: String,
    expires_at: i64,
    interval_secs: i64,
    last_poll_at: Option<i64>,
    account_id: Option<String>,
    user_id: Option<String>,
    client_name: String,
    client_host: String,
}

/// A poll (see `DeviceLogins::poll`).
pub(in crate::db) fn poll(
    conn: &mut Connection,
    device_hash: &[u8; 32],
    issue: &TokenToIssue,
    now: i64,
) -> Result<Polled, MttrlyError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(internal)?;
    let row = tx
        .query_row(
            "SELECT status, expires_at, interval_secs, last_poll_at, account_id, user_id, client_name, client_host
             FROM device_logins WHERE device_hash = ?1",
            params![device_hash.as_slice()],
            |r| {
                Ok(PollRow {
                    status: r.get(0)?,
                    expires_at: r.get(1)?,
                    interval_secs: r.get(2)?,
                    last_poll_at: r.get(3)?,
                    account_id: r.get(4)?,
                    user_id: r.get(5)?,
                    client_name: r.get(6)?,
                    client_host: r.get(7)?,
                })
            },
        )
        .optional()
        .map_err(internal)?;
    let Some(row) = row else { return Ok(Polled::Unknown) };
    if row.status == "delivered" {
        return Ok(Polled::Used);
    }
    if row.expires_at <= now {
        return Ok(Polled::Expired);
    }
    // Only an undecided login is paced: an approved one is delivered whenever it is asked for,
    // since whoever holds the device code is the one it is for.
    if row.status != "approved"
        && let Some(last) = row.last_poll_at
        && now - last < row.interval_secs.saturating_mul(1000)
    {
        let interval = row.interval_secs + SLOW_DOWN_STEP_SECS;
        tx.execute(
            "UPDATE device_logins SET interval_secs = ?2, last_poll_at = ?3 WHERE device_hash = ?1",
            params![device_hash.as_slice(), interval, now],
        )
        .map_err(internal)?;
        tx.commit().map_err(internal)?;
        return Ok(Polled::SlowDown(interval));
    }
    tx.execute(
        "UPDATE device_logins SET last_poll_at = ?2 WHERE device_hash = ?1",
        params![device_hash.as_slice(), now],
    )
    .map_err(internal)?;
    let answer = match row.status.as_str() {
        "pending" => Polled::Pending(row.interval_secs),
        "approved" => deliver(&tx, device_hash, &row, issue, now)?,
        _ => Polled::Denied,
    };
    tx.commit().map_err(internal)?;
    Ok(answer)
}

/// Stores the approver's new token and marks the login delivered; `Denied` when the approver was
/// removed (or their row cannot be read) since they approved.
fn deliver(
    tx: &Connection,
    device_hash: &[u8; 32],
    row: &PollRow,
    issue: &TokenToIssue,
    now: i64,
) -> Result<Polled, MttrlyError> {
    let (Some(account), Some(user)) = (row.account_id.as_deref(), row.user_id.as_deref()) else {
        return Ok(Polled::Denied);
    };
    let approver = tx
        .query_row(
            "SELECT name, role FROM users WHERE id = ?1 AND account_id = ?2 AND removed_at IS NULL",
            params![user, account],
            |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
        )
        .optional()
        .map_err(internal)?;
    let Some((user_name, role)) = approver else { return Ok(Polled::Denied) };
    let (Ok(account_id), Ok(user_id), Ok(role)) =
        (AccountId::parse(account), UserId::parse(user), role.parse::<Role>())
    else {
        tracing::error!(%account, %user, "device login names a malformed approver; refused");
        return Ok(Polled::Denied);
    };
    let scope = ToolSurface::ALL;
    // An ordinary human token (`tokens list` shows it, `tokens revoke` kills it), named after the
    // client so its owner can tell it from the others.
    let token_id: String = tx
        .query_row(
            "INSERT INTO api_tokens (token_hash, account_id, user_id, kind, assistant_name, created_at, read_only, toolsets, id)
             VALUES (?1, ?2, ?3, 'human', ?4, ?5, ?6, ?7, 'tkn_' || lower(hex(randomblob(16))))
             RETURNING id",
            params![
                issue.hash.as_slice(),
                account,
                user,
                (issue.name)(&row.client_name, &row.client_host),
                now,
                scope.read_only,
                scope.toolsets_flag()
            ],
            |r| r.get(0),
        )
        .map_err(internal)?;
    tx.execute(
        "UPDATE device_logins SET status = 'delivered', token_id = ?2 WHERE device_hash = ?1",
        params![device_hash.as_slice(), token_id],
    )
    .map_err(internal)?;
    tracing::debug!(client = %row.client_name, %token_id, "device login delivered its token");
    Ok(Polled::Approved(Issued { token_id, account_id, user_id, user_name, role }))
}
