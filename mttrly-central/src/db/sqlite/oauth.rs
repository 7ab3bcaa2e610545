//! OAuth clients, codes and tokens: the SQL. Codes and tokens are stored as SHA-256 hashes only.

use mttrly_core::ids::{AccountId, UserId};
use mttrly_core::{MttrlyError, Plan, Principal, ToolSurface};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::internal;
use crate::db::accounts::{TokenOwner, derived_session_id};
use crate::db::oauth::{AccessRefusal, Client, CodeGrant, CodeUse, Refresh, TokenPair};

/// Registers a client.
pub(in crate::db) fn insert_client(conn: &Connection, c: &Client, now: i64) -> Result<(), MttrlyError> {
    conn.execute(
        "INSERT INTO oauth_clients (client_id, client_name, redirect_uris_json, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![c.client_id, c.client_name, serde_json::to_string(&c.redirect_uris).unwrap_or_default(), now],
    )
    .map_err(internal)?;
    Ok(())
}

/// A client by id.
pub(in crate::db) fn client(conn: &Connection, id: &str) -> Result<Option<Client>, MttrlyError> {
    conn.query_row(
        "SELECT client_id, client_name, redirect_uris_json FROM oauth_clients WHERE client_id = ?1",
        params![id],
        |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?)),
    )
    .optional()
    .map_err(internal)
    .map(|row| {
        row.map(|(client_id, client_name, uris)| Client {
            client_id,
            client_name,
            redirect_uris: serde_json::from_str(&uris).unwrap_or_default(),
        })
    })
}

const GRANT_COLUMNS: &str = "client_id, account_id, user_id, redirect_uri, code_challenge, resource, scope, human_token_hash, read_only, toolsets, grant_expires_at";

/// A grant from a row whose `GRANT_COLUMNS` start at column `at`.
fn grant_at(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<Option<CodeGrant>> {
    let account: String = r.get(at + 1)?;
    let user: String = r.get(at + 2)?;
    let read_only: bool = r.get(at + 8)?;
    let toolsets: Option<String> = r.get(at + 9)?;
    let (Ok(account_id), Ok(user_id), Ok(surface)) =
        (AccountId::parse(&account), UserId::parse(&user), ToolSurface::from_stored(read_only, toolsets.as_deref()))
    else {
        return Ok(None);
    };
    Ok(Some(CodeGrant {
        client_id: r.get(at)?,
        account_id,
        user_id,
        redirect_uri: r.get(at + 3)?,
        code_challenge: r.get(at + 4)?,
        resource: r.get(at + 5)?,
        scope: r.get(at + 6)?,
        human_token_hash: r.get(at + 7)?,
        surface,
        grant_expires_at: r.get(at + 10)?,
    }))
}

/// Stores a code.
pub(in crate::db) fn insert_code(
    conn: &Connection,
    hash: &[u8; 32],
    g: &CodeGrant,
    expires_at: i64,
) -> Result<(), MttrlyError> {
    conn.execute(
        &format!("INSERT INTO oauth_codes (code_hash, {GRANT_COLUMNS}, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"),
        params![
            hash.as_slice(),
            g.client_id,
            g.account_id.as_str(),
            g.user_id.as_str(),
            g.redirect_uri,
            g.code_challenge,
            g.resource,
            g.scope,
            g.human_token_hash,
            g.surface.read_only,
            g.surface.toolsets_flag(),
            g.grant_expires_at,
            expires_at
        ],
    )
    .map_err(internal)?;
    Ok(())
}

/// Uses a code once, recording in the same statement the token family its exchange starts, so a
/// replay arriving at any moment after finds the family to revoke (RFC 6749 §4.1.2).
pub(in crate::db) fn take_code(
    conn: &Connection,
    hash: &[u8; 32],
    family: &str,
    now: i64,
) -> Result<CodeUse, MttrlyError> {
    let used = conn
        .execute(
            "UPDATE oauth_codes SET used_at = ?2, family = ?3 WHERE code_hash = ?1 AND used_at IS NULL AND expires_at > ?2",
            params![hash.as_slice(), now, family],
        )
        .map_err(internal)?;
    if used == 0 {
        let family: Option<Option<String>> = conn
            .query_row(
                "SELECT family FROM oauth_codes WHERE code_hash = ?1 AND used_at IS NOT NULL",
                params![hash.as_slice()],
                |r| r.get(0),
            )
            .optional()
            .map_err(internal)?;
        return Ok(match family {
            Some(family) => {
                if let Some(f) = family {
                    revoke_family(conn, &f, now)?;
                }
                CodeUse::Replayed
            }
            None => CodeUse::Invalid,
        });
    }
    let grant = conn
        .query_row(
            &format!("SELECT {GRANT_COLUMNS} FROM oauth_codes WHERE code_hash = ?1"),
            params![hash.as_slice()],
            |r| grant_at(r, 0),
        )
        .optional()
        .map_err(internal)?
        .flatten();
    Ok(grant.map_or(CodeUse::Invalid, |g| CodeUse::Valid(Box::new(g))))
}

/// A token row to store.
struct NewToken<'a> {
    /// SHA-256 of the token.
    hash: [u8; 32],
    /// `access` or `refresh`.
    kind: &'a str,
    /// The refresh family (one per authorization; reuse of a rotated refresh token revokes it).
    family: &'a str,
    /// What it was issued for.
    grant: &'a CodeGrant,
    /// When it expires (ms).
    expires_at: i64,
}

/// Stores a token.
fn insert_token(conn: &Connection, t: &NewToken<'_>) -> Result<(), MttrlyError> {
    let g = t.grant;
    conn.execute(
        "INSERT INTO oauth_tokens (token_hash, kind, family, client_id, account_id, user_id, resource, scope,
         human_token_hash, read_only, toolsets, grant_expires_at, expires_at, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        params![
            t.hash.as_slice(),
            t.kind,
            t.family,
            g.client_id,
            g.account_id.as_str(),
            g.user_id.as_str(),
            g.resource,
            g.scope,
            g.human_token_hash,
            g.surface.read_only,
            g.surface.toolsets_flag(),
            g.grant_expires_at,
            t.expires_at.min(g.grant_expires_at),
            crate::db::now_ms()
        ],
    )
    .map_err(internal)?;
    Ok(())
}

/// Uses a refresh token once. The grant must still be alive: its user not removed, the human
/// token it was given with (if any: a browser consent binds the user alone) unrevoked, and its
/// absolute lifetime not over.
pub(in crate::db) fn use_refresh(
    conn: &Connection,
    hash: &[u8; 32],
    client_id: &str,
    now: i64,
) -> Result<Refresh, MttrlyError> {
    let row = conn
        .query_row(
            "SELECT t.family, t.client_id, t.account_id, t.user_id, '' , '', t.resource, t.scope, t.human_token_hash,
                    t.read_only, t.toolsets, t.grant_expires_at, t.expires_at, t.used_at, t.revoked_at,
                    (SELECT u.removed_at IS NULL FROM users u WHERE u.id = t.user_id)
                    AND (t.human_token_hash IS NULL
                         OR (SELECT h.revoked_at IS NULL FROM api_tokens h WHERE h.token_hash = t.human_token_hash))
             FROM oauth_tokens t WHERE t.token_hash = ?1 AND t.kind = 'refresh'",
            params![hash.as_slice()],
            |r| {
                let family: String = r.get(0)?;
                let expires_at: i64 = r.get(12)?;
                let used_at: Option<i64> = r.get(13)?;
                let revoked_at: Option<i64> = r.get(14)?;
                let human_alive: Option<bool> = r.get(15)?;
                // Columns 1..=11 line up with GRANT_COLUMNS.
                let grant = grant_at(r, 1)?;
                Ok((family, expires_at, used_at, revoked_at, human_alive.unwrap_or(false), grant))
            },
        )
        .optional()
        .map_err(internal)?;
    let Some((family, expires_at, used_at, revoked_at, human_alive, grant)) = row else {
        return Ok(Refresh::Invalid);
    };
    let Some(grant) = grant else { return Ok(Refresh::Invalid) };
    if grant.client_id != client_id
        || revoked_at.is_some()
        || expires_at <= now
        || !human_alive
        || grant.grant_expires_at <= now
    {
        return Ok(Refresh::Invalid);
    }
    if used_at.is_some() {
        revoke_family(conn, &family, now)?;
        return Ok(Refresh::Replayed);
    }
    conn.execute("UPDATE oauth_tokens SET used_at = ?2 WHERE token_hash = ?1", params![hash.as_slice(), now])
        .map_err(internal)?;
    Ok(Refresh::Valid(Box::new(grant), family))
}

/// Revokes every token of a family.
pub(in crate::db) fn revoke_family(conn: &Connection, family: &str, now: i64) -> Result<(), MttrlyError> {
    conn.execute(
        "UPDATE oauth_tokens SET revoked_at = ?2 WHERE family = ?1 AND revoked_at IS NULL",
        params![family, now],
    )
    .map_err(internal)?;
    Ok(())
}

/// The owner of a valid access token for `resource`.
pub(in crate::db) fn access_owner(
    conn: &Connection,
    hash: &[u8; 32],
    resource: &str,
    now: i64,
) -> Result<Result<TokenOwner, AccessRefusal>, MttrlyError> {
    let row = conn
        .query_row(
            "SELECT t.account_id, a.plan, t.user_id, u.name, u.role, c.client_name, t.resource, t.expires_at,
                    CASE WHEN t.revoked_at IS NOT NULL OR u.removed_at IS NOT NULL
                              OR (t.human_token_hash IS NOT NULL AND (h.revoked_at IS NOT NULL OR h.token_hash IS NULL))
                         THEN 1 END,
                    t.read_only, t.toolsets, t.family
             FROM oauth_tokens t JOIN users u ON u.id = t.user_id JOIN accounts a ON a.id = t.account_id
             JOIN oauth_clients c ON c.client_id = t.client_id
             LEFT JOIN api_tokens h ON h.token_hash = t.human_token_hash
             WHERE t.token_hash = ?1 AND t.kind = 'access'",
            params![hash.as_slice()],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, String>(6)?,
                    r.get::<_, i64>(7)?,
                    r.get::<_, Option<i64>>(8)?,
                    r.get::<_, bool>(9)?,
                    r.get::<_, Option<String>>(10)?,
                    r.get::<_, String>(11)?,
                ))
            },
        )
        .optional()
        .map_err(internal)?;
    let Some((
        account,
        plan,
        user,
        name,
        role,
        client_name,
        token_resource,
        expires_at,
        revoked_at,
        read_only,
        toolsets,
        family,
    )) = row
    else {
        return Ok(Err(AccessRefusal::Invalid));
    };
    if revoked_at.is_some() || expires_at <= now {
        return Ok(Err(AccessRefusal::Invalid));
    }
    if token_resource != resource {
        return Ok(Err(AccessRefusal::WrongAudience));
    }
    let (Ok(account_id), Ok(plan), Ok(user_id)) =
        (AccountId::parse(&account), plan.parse::<Plan>(), UserId::parse(&user))
    else {
        return Ok(Err(AccessRefusal::Invalid));
    };
    Ok(Ok(TokenOwner {
        account_id,
        plan,
        principal: Principal::Assistant {
            // One session id per access token; the MCP layer replaces it with the MCP session's.
            session_id: derived_session_id(hash),
            client_name,
            on_behalf_of: user_id,
        },
        role: match role.parse() {
            Ok(role) => role,
            Err(_) => return Ok(Err(AccessRefusal::Invalid)),
        },
        user_name: name,
        // Never more than the human token the consent was given with (after a browser consent: the
        // user's whole surface; their role still decides what they may do).
        scope: ToolSurface::from_stored(read_only, toolsets.as_deref())
            .unwrap_or(ToolSurface { read_only: true, toolsets: Some(std::collections::BTreeSet::new()) }),
        // Per grant, not per access token: refreshing must not buy a fresh rate-limit bucket or
        // a fresh set of MCP sessions.
        credential: format!("oauth_{family}"),
    }))
}

/// Stores an access token and its refresh token together, in one IMMEDIATE transaction.
pub(in crate::db) fn insert_token_pair(conn: &mut Connection, pair: &TokenPair) -> Result<bool, MttrlyError> {
    let token = |hash, kind, expires_at| NewToken { hash, kind, family: &pair.family, grant: &pair.grant, expires_at };
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(internal)?;
    let revoked = tx
        .query_row(
            "SELECT 1 FROM oauth_tokens WHERE family = ?1 AND revoked_at IS NOT NULL LIMIT 1",
            params![pair.family],
            |_| Ok(()),
        )
        .optional()
        .map_err(internal)?
        .is_some();
    if revoked {
        return Ok(false);
    }
    insert_token(&tx, &token(pair.access_hash, "access", pair.access_expires_at))?;
    insert_token(&tx, &token(pair.refresh_hash, "refresh", pair.refresh_expires_at))?;
    tx.commit().map_err(internal)?;
    Ok(true)
}
