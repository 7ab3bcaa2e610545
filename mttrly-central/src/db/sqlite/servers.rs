//! The server registry, install tokens and agent credentials: the SQL.

use mttrly_core::capability::CapabilitySet;
use mttrly_core::ids::{AccountId, ServerId};
use mttrly_core::{Environment, ErrorCode, MttrlyError};
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::internal;
use crate::db::now_ms;
use crate::db::servers::{HostRow, Registered, ServerBrief, ServerRow};

const COLUMNS: &str = "id, account_id, name, environment, created_at, hostname, os, kernel, arch, agent_version, \
                       capabilities, policy_json, last_seen_at, metrics_json";

fn row(r: &Row<'_>) -> rusqlite::Result<Option<ServerRow>> {
    let id: String = r.get(0)?;
    let account: String = r.get(1)?;
    let environment: String = r.get(3)?;
    let hostname: Option<String> = r.get(5)?;
    let host = match hostname {
        Some(hostname) => Some(HostRow {
            hostname,
            os: r.get::<_, Option<String>>(6)?.unwrap_or_default(),
            kernel: r.get::<_, Option<String>>(7)?.unwrap_or_default(),
            arch: r.get::<_, Option<String>>(8)?.unwrap_or_default(),
            agent_version: r.get::<_, Option<String>>(9)?.unwrap_or_default(),
            capabilities: CapabilitySet::from_wire(
                &r.get::<_, Option<String>>(10)?.unwrap_or_default().split(',').collect::<Vec<_>>(),
            ),
            policy_json: r.get::<_, Option<String>>(11)?.unwrap_or_default(),
        }),
        None => None,
    };
    let (Ok(id), Ok(account_id), Ok(environment)) =
        (ServerId::parse(&id), AccountId::parse(&account), environment.parse::<Environment>())
    else {
        return Ok(None);
    };
    Ok(Some(ServerRow {
        id,
        account_id,
        name: r.get(2)?,
        environment,
        created_at: r.get(4)?,
        host,
        last_seen_at: r.get(12)?,
        metrics_json: r.get(13)?,
    }))
}

/// How many live (not decommissioned) servers an account has.
pub(in crate::db) fn count_live(conn: &Connection, account: &AccountId) -> Result<u32, MttrlyError> {
    conn.query_row(
        "SELECT COUNT(*) FROM servers WHERE account_id = ?1 AND decommissioned_at IS NULL",
        params![account.as_str()],
        |r| r.get(0),
    )
    .map_err(internal)
}

/// Registers a server. A name already used by a live server of the account is refused.
pub(in crate::db) fn insert(
    conn: &Connection,
    account: &AccountId,
    name: &str,
    environment: Environment,
) -> Result<ServerId, MttrlyError> {
    let id = ServerId::generate();
    let result = conn.execute(
        "INSERT INTO servers (id, account_id, name, environment, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![id.as_str(), account.as_str(), name, environment.as_str(), now_ms()],
    );
    match result {
        Ok(_) => Ok(id),
        Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::ConstraintViolation => {
            Err(MttrlyError::new(ErrorCode::ValidationError, format!("a server named `{name}` already exists"))
                .with_detail("field", "name"))
        }
        Err(e) => Err(internal(e)),
    }
}

/// A live server of the account, or `None` (also for another account's server).
pub(in crate::db) fn get(
    conn: &Connection,
    account: &AccountId,
    id: &ServerId,
) -> Result<Option<ServerRow>, MttrlyError> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM servers WHERE id = ?1 AND account_id = ?2 AND decommissioned_at IS NULL"
    ))
    .and_then(|mut stmt| stmt.query_row(params![id.as_str(), account.as_str()], row))
    .optional()
    .map(Option::flatten)
    .map_err(internal)
}

/// The account's live servers, by name.
pub(in crate::db) fn list(conn: &Connection, account: &AccountId) -> Result<Vec<ServerRow>, MttrlyError> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM servers WHERE account_id = ?1 AND decommissioned_at IS NULL ORDER BY name"
        ))
        .map_err(internal)?;
    let rows = stmt.query_map(params![account.as_str()], row).map_err(internal)?;
    let mut out = Vec::new();
    for r in rows {
        if let Some(server) = r.map_err(internal)? {
            out.push(server);
        }
    }
    Ok(out)
}

/// The account's live servers in brief, by name.
/// Every live server of an account in brief, by name: read from the covering index
/// `servers_live_brief` alone (a test checks the plan). Named, because left free the planner
/// takes the unique `servers_live_name`, which orders as well but sends each server to its row.
const BRIEFS: &str = "SELECT id, name, environment FROM servers INDEXED BY servers_live_brief
     WHERE account_id = ?1 AND decommissioned_at IS NULL ORDER BY name";

pub(in crate::db) fn briefs(conn: &Connection, account: &AccountId) -> Result<Vec<ServerBrief>, MttrlyError> {
    let mut stmt = conn.prepare_cached(BRIEFS).map_err(internal)?;
    let rows = stmt
        .query_map(params![account.as_str()], |r| {
            let (id, environment) = (r.get_ref(0)?.as_str()?, r.get_ref(2)?.as_str()?);
            let (Ok(id), Ok(environment)) = (ServerId::parse(id), environment.parse::<Environment>()) else {
                return Ok(None);
            };
            Ok(Some(ServerBrief { id, name: r.get(1)?, environment }))
        })
        .map_err(internal)?;
    let mut out = Vec::new();
    for r in rows {
        if let Some(brief) = r.map_err(internal)? {
            out.push(brief);
        }
    }
    Ok(out)
}

/// `get_many`'s source and conditions: one primary-key lookup per id asked for. `+account_id`
/// keeps the planner off the account's indexes, which it preferred and which walked every server
/// of the account (10,000 wide rows for a page of 100); the account is still checked on each row
/// found. A test checks the plan.
const GET_MANY: &str = "FROM servers WHERE +account_id = ?1 AND decommissioned_at IS NULL
     AND id IN (SELECT value FROM json_each(?2))";

/// The account's live servers among `ids`, in the order of `ids`.
pub(in crate::db) fn get_many(
    conn: &Connection,
    account: &AccountId,
    ids: &[ServerId],
) -> Result<Vec<ServerRow>, MttrlyError> {
    let wanted = serde_json::to_string(&ids.iter().map(ServerId::as_str).collect::<Vec<_>>())
        .map_err(|e| MttrlyError::new(ErrorCode::InternalError, format!("cannot list server ids: {e}")))?;
    let mut stmt = conn.prepare_cached(&format!("SELECT {COLUMNS} {GET_MANY}")).map_err(internal)?;
    let rows = stmt.query_map(params![account.as_str(), wanted], row).map_err(internal)?;
    let mut found = std::collections::HashMap::with_capacity(ids.len());
    for r in rows {
        if let Some(server) = r.map_err(internal)? {
            found.insert(server.id.clone(), server);
        }
    }
    Ok(ids.iter().filter_map(|id| found.remove(id)).collect())
}

/// How many open alerts each of the account's servers has, in one grouped query.
pub(in crate::db) fn open_alert_counts(
    conn: &Connection,
    account: &AccountId,
) -> Result<std::collections::HashMap<ServerId, u32>, MttrlyError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT server_id, COUNT(*) FROM alerts WHERE account_id = ?1 AND status = 'open' GROUP BY server_id",
        )
        .map_err(internal)?;
    let rows = stmt
        .query_map(params![account.as_str()], |r| Ok((r.get::<_, String>(0)?, r.get::<_, u32>(1)?)))
        .map_err(internal)?;
    let mut out = std::collections::HashMap::new();
    for r in rows {
        let (server, count) = r.map_err(internal)?;
        if let Ok(server) = ServerId::parse(&server) {
            out.insert(server, count);
        }
    }
    Ok(out)
}

/// Every live server of every account (to seed the live registry at start).
pub(in crate::db) fn all_live(conn: &Connection) -> Result<Vec<ServerRow>, MttrlyError> {
    let mut stmt =
        conn.prepare(&format!("SELECT {COLUMNS} FROM servers WHERE decommissioned_at IS NULL")).map_err(internal)?;
    let rows = stmt.query_map([], row).map_err(internal)?;
    let mut out = Vec::new();
    for r in rows {
        if let Some(server) = r.map_err(internal)? {
            out.push(server);
        }
    }
    Ok(out)
}

/// Marks a server decommissioned and revokes its credentials and unused install tokens.
pub(in crate::db) fn decommission(
    conn: &mut Connection,
    account: &AccountId,
    id: &ServerId,
) -> Result<bool, MttrlyError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(internal)?;
    let now = now_ms();
    let changed = tx
        .execute(
            "UPDATE servers SET decommissioned_at = ?3 WHERE id = ?1 AND account_id = ?2 AND decommissioned_at IS NULL",
            params![id.as_str(), account.as_str(), now],
        )
        .map_err(internal)?;
    if changed == 1 {
        revoke_all(&tx, id, now)?;
    }
    tx.commit().map_err(internal)?;
    Ok(changed == 1)
}

fn revoke_all(conn: &Connection, id: &ServerId, now: i64) -> Result<(), MttrlyError> {
    conn.execute(
        "UPDATE agent_credentials SET revoked_at = ?2 WHERE server_id = ?1 AND revoked_at IS NULL",
        params![id.as_str(), now],
    )
    .map_err(internal)?;
    conn.execute(
        "UPDATE install_tokens SET used_at = ?2 WHERE server_id = ?1 AND used_at IS NULL",
        params![id.as_str(), now],
    )
    .map_err(internal)?;
    Ok(())
}

/// Stores a new install token's hash.
pub(in crate::db) fn insert_install_token(
    conn: &Connection,
    hash: &[u8; 32],
    server: &ServerId,
    expires_at: i64,
) -> Result<(), MttrlyError> {
    conn.execute(
        "INSERT INTO install_tokens (token_hash, server_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
        params![hash.as_slice(), server.as_str(), now_ms(), expires_at],
    )
    .map_err(internal)?;
    Ok(())
}

/// Revokes the server's credentials and pending install tokens, and stores a new install token:
/// the old agent stops working at once and the server's history is kept.
///
/// Scoped to `account`: another account's server is left alone and `false` returned.
pub(in crate::db) fn rotate_credentials(
    conn: &mut Connection,
    account: &AccountId,
    server: &ServerId,
    new_token_hash: &[u8; 32],
    expires_at: i64,
) -> Result<bool, MttrlyError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(internal)?;
    let owned = tx
        .query_row(
            "SELECT 1 FROM servers WHERE id = ?1 AND account_id = ?2",
            params![server.as_str(), account.as_str()],
            |_| Ok(()),
        )
        .optional()
        .map_err(internal)?
        .is_some();
    if !owned {
        return Ok(false);
    }
    revoke_all(&tx, server, now_ms())?;
    insert_install_token(&tx, new_token_hash, server, expires_at)?;
    tx.commit().map_err(internal)?;
    Ok(true)
}

/// Trades an install token for agent credentials, in one transaction: the token is marked used,
/// any older credentials of the server are revoked, and the new secret's hash is stored.
///
/// Unknown, used and expired tokens are all `AUTH_FAILED`, each with its own message.
pub(in crate::db) fn enroll(
    conn: &mut Connection,
    token_hash: &[u8; 32],
    secret_hash: &[u8; 32],
    now: i64,
) -> Result<(ServerId, AccountId), MttrlyError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(internal)?;
    let found = tx
        .query_row(
            "SELECT t.server_id, t.expires_at, t.used_at, s.account_id, s.decommissioned_at
             FROM install_tokens t JOIN servers s ON s.id = t.server_id WHERE t.token_hash = ?1",
            params![token_hash.as_slice()],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, Option<i64>>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, Option<i64>>(4)?,
                ))
            },
        )
        .optional()
        .map_err(internal)?;
    let refuse = |msg: &str| Err(MttrlyError::new(ErrorCode::AuthFailed, msg));
    let Some((server, expires_at, used_at, account, decommissioned)) = found else {
        return refuse("unknown install token: create a new one with `mttrly-cli servers add`");
    };
    if used_at.is_some() || decommissioned.is_some() {
        return refuse("this install token was already used (install tokens are single-use): issue a new one");
    }
    if expires_at <= now {
        return refuse("this install token has expired: issue a new one");
    }
    let (Ok(server), Ok(account)) = (ServerId::parse(&server), AccountId::parse(&account)) else {
        return Err(MttrlyError::new(ErrorCode::InternalError, "corrupt install token row"));
    };
    tx.execute("UPDATE install_tokens SET used_at = ?2 WHERE token_hash = ?1", params![token_hash.as_slice(), now])
        .map_err(internal)?;
    tx.execute(
        "UPDATE agent_credentials SET revoked_at = ?2 WHERE server_id = ?1 AND revoked_at IS NULL",
        params![server.as_str(), now],
    )
    .map_err(internal)?;
    tx.execute(
        "INSERT INTO agent_credentials (secret_hash, server_id, created_at) VALUES (?1, ?2, ?3)",
        params![secret_hash.as_slice(), server.as_str(), now],
    )
    .map_err(internal)?;
    tx.commit().map_err(internal)?;
    Ok((server, account))
}

/// The live server an agent secret belongs to, if the secret is current.
pub(in crate::db) fn credential_owner(
    conn: &Connection,
    secret_hash: &[u8; 32],
) -> Result<Option<(ServerId, AccountId)>, MttrlyError> {
    let row = conn
        .query_row(
            "SELECT s.id, s.account_id FROM agent_credentials c JOIN servers s ON s.id = c.server_id
             WHERE c.secret_hash = ?1 AND c.revoked_at IS NULL AND s.decommissioned_at IS NULL",
            params![secret_hash.as_slice()],
            |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
        )
        .optional()
        .map_err(internal)?;
    Ok(row.and_then(|(s, a)| Some((ServerId::parse(&s).ok()?, AccountId::parse(&a).ok()?))))
}

/// Records what an agent said in `Hello`.
pub(in crate::db) fn record_hello(
    conn: &Connection,
    server: &ServerId,
    host: &HostRow,
    now: i64,
) -> Result<(), MttrlyError> {
    conn.execute(
        "UPDATE servers SET hostname = ?2, os = ?3, kernel = ?4, arch = ?5, agent_version = ?6, capabilities = ?7,
         policy_json = ?8, last_seen_at = ?9 WHERE id = ?1",
        params![
            server.as_str(),
            host.hostname,
            host.os,
            host.kernel,
            host.arch,
            host.agent_version,
            host.capabilities.to_wire().join(","),
            host.policy_json,
            now
        ],
    )
    .map_err(internal)?;
    Ok(())
}

/// Writes a batch of heartbeats (last seen and latest metrics) in one transaction.
pub(in crate::db) fn flush_heartbeats(
    conn: &mut Connection,
    batch: &[(ServerId, i64, String)],
    sample_at: Option<i64>,
) -> Result<(), MttrlyError> {
    if batch.is_empty() && sample_at.is_none() {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(internal)?;
    {
        let mut stmt = tx
            .prepare_cached("UPDATE servers SET last_seen_at = ?2, metrics_json = ?3 WHERE id = ?1")
            .map_err(internal)?;
        for (server, seen, metrics) in batch {
            stmt.execute(params![server.as_str(), seen, metrics]).map_err(internal)?;
        }
    }
    if let Some(at) = sample_at {
        super::metrics::sample(&tx, at)?;
    }
    tx.commit().map_err(internal)
}

/// Registers a server of `account` and stores its install token's hash, unless the account
/// already has `limit` live servers. The count and the inserts are one IMMEDIATE transaction, so
/// two racing registrations cannot both take the last slot.
pub(in crate::db) fn register(
    conn: &mut Connection,
    account: &AccountId,
    name: &str,
    environment: Environment,
    install_hash: &[u8; 32],
    expires_at: i64,
    limit: u32,
) -> Result<Registered, MttrlyError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(internal)?;
    let count = count_live(&tx, account)?;
    if count >= limit {
        return Ok(Registered::AtLimit { count });
    }
    let id = insert(&tx, account, name, environment)?;
    insert_install_token(&tx, install_hash, &id, expires_at)?;
    tx.commit().map_err(internal)?;
    Ok(Registered::Added(id))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    /// The brief list never reads the servers' rows (each carries its latest metrics): the
    /// covering index answers it, with or without statistics; a page's full rows are read by
    /// their ids, not by walking the account.
    #[test]
    fn briefs_are_read_from_the_covering_index_alone_and_a_page_by_its_ids() {
        let dir = tempfile::tempdir().unwrap();
        drop(crate::db::Db::open(&dir.path().join("c.db")).unwrap());
        let conn = rusqlite::Connection::open(dir.path().join("c.db")).unwrap();
        for setup in ["", "ANALYZE"] {
            conn.execute_batch(setup).unwrap();
            let plan: Vec<String> = conn
                .prepare(&format!("EXPLAIN QUERY PLAN {}", super::BRIEFS))
                .unwrap()
                .query_map(["acc"], |r| r.get::<_, String>(3))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert_eq!(plan, ["SEARCH servers USING COVERING INDEX servers_live_brief (account_id=?)"], "{setup:?}");
            let plan: Vec<String> = conn
                .prepare(&format!("EXPLAIN QUERY PLAN SELECT {} {}", super::COLUMNS, super::GET_MANY))
                .unwrap()
                .query_map(["acc", "[\"srv\"]"], |r| r.get::<_, String>(3))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert_eq!(plan[0], "SEARCH servers USING INDEX sqlite_autoindex_servers_1 (id=?)", "{setup:?}: {plan:?}");
        }
    }
}
