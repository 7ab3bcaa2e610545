//! OAuth clients, codes and tokens. Codes and tokens are stored as SHA-256 hashes only.

use mttrly_core::ids::{AccountId, UserId};
use mttrly_core::{MttrlyError, Plan, Principal, ToolSurface};
use rusqlite::{Connection, OptionalExtension, params};

use super::accounts::{Role, TokenOwner};
use super::internal;

/// A registered client.
#[derive(Debug, Clone)]
pub struct Client {
    /// Its id.
    pub client_id: String,
    /// The name it registered with (shown on the consent page and in the audit log).
    pub client_name: String,
    /// Exact redirect URIs.
    pub redirect_uris: Vec<String>,
}

/// Registers a client.
pub fn insert_client(conn: &Connection, c: &Client, now: i64) -> Result<(), MttrlyError> {
    conn.execute(
        "INSERT INTO oauth_clients (client_id, client_name, redirect_uris_json, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![c.client_id, c.client_name, serde_json::to_string(&c.redirect_uris).unwrap_or_default(), now],
    )
    .map_err(internal)?;
    Ok(())
}

/// A client by id.
pub fn client(conn: &Connection, id: &str) -> Result<Option<Client>, MttrlyError> {
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

/// What a code was issued for.
#[derive(Debug, Clone)]
pub struct CodeGrant {
    /// The client.
    pub client_id: String,
    /// The tenant.
    pub account_id: AccountId,
    /// The human who consented.
    pub user_id: UserId,
    /// The exact redirect URI of the authorization request.
    pub redirect_uri: String,
    /// The PKCE S256 challenge.
    pub code_challenge: String,
    /// The resource (audience) the tokens will be bound to.
    pub resource: String,
    /// The granted scope.
    pub scope: String,
}

/// Stores a code.
pub fn insert_code(conn: &Connection, hash: &[u8; 32], g: &CodeGrant, expires_at: i64) -> Result<(), MttrlyError> {
    conn.execute(
        "INSERT INTO oauth_codes (code_hash, client_id, account_id, user_id, redirect_uri, code_challenge, resource, scope, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            hash.as_slice(),
            g.client_id,
            g.account_id.as_str(),
            g.user_id.as_str(),
            g.redirect_uri,
            g.code_challenge,
            g.resource,
            g.scope,
            expires_at
        ],
    )
    .map_err(internal)?;
    Ok(())
}

/// Uses a code: marks it used (once) and returns its grant if it was unused and unexpired.
pub fn take_code(conn: &Connection, hash: &[u8; 32], now: i64) -> Result<Option<CodeGrant>, MttrlyError> {
    let used = conn
        .execute(
            "UPDATE oauth_codes SET used_at = ?2 WHERE code_hash = ?1 AND used_at IS NULL AND expires_at > ?2",
            params![hash.as_slice(), now],
        )
        .map_err(internal)?;
    if used == 0 {
        return Ok(None);
    }
    conn.query_row(
        "SELECT client_id, account_id, user_id, redirect_uri, code_challenge, resource, scope FROM oauth_codes WHERE code_hash = ?1",
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
            ))
        },
    )
    .optional()
    .map_err(internal)
    .map(|row| {
        row.and_then(|(client_id, account, user, redirect_uri, code_challenge, resource, scope)| {
            Some(CodeGrant {
                client_id,
                account_id: AccountId::parse(&account).ok()?,
                user_id: UserId::parse(&user).ok()?,
                redirect_uri,
                code_challenge,
                resource,
                scope,
            })
        })
    })
}

/// A token row to store.
pub struct NewToken<'a> {
    /// SHA-256 of the token.
    pub hash: [u8; 32],
    /// `access` or `refresh`.
    pub kind: &'a str,
    /// The refresh family (one per authorization; reuse of a rotated refresh token revokes it).
    pub family: &'a str,
    /// What it was issued for.
    pub grant: &'a CodeGrant,
    /// When it expires (ms).
    pub expires_at: i64,
}

/// Stores a token.
pub fn insert_token(conn: &Connection, t: &NewToken<'_>) -> Result<(), MttrlyError> {
    conn.execute(
        "INSERT INTO oauth_tokens (token_hash, kind, family, client_id, account_id, user_id, resource, scope, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            t.hash.as_slice(),
            t.kind,
            t.family,
            t.grant.client_id,
            t.grant.account_id.as_str(),
            t.grant.user_id.as_str(),
            t.grant.resource,
            t.grant.scope,
            t.expires_at
        ],
    )
    .map_err(internal)?;
    Ok(())
}

/// What using a refresh token found.
pub enum Refresh {
    /// Valid: it is now used; here is what it was for, and its family.
    Valid(CodeGrant, String),
    /// Already used: a replay. The whole family has been revoked.
    Replayed,
    /// Unknown, expired or revoked.
    Invalid,
}

/// Uses a refresh token once.
pub fn use_refresh(conn: &Connection, hash: &[u8; 32], client_id: &str, now: i64) -> Result<Refresh, MttrlyError> {
    let row = conn
        .query_row(
            "SELECT family, client_id, account_id, user_id, resource, scope, expires_at, used_at, revoked_at
             FROM oauth_tokens WHERE token_hash = ?1 AND kind = 'refresh'",
            params![hash.as_slice()],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, i64>(6)?,
                    r.get::<_, Option<i64>>(7)?,
                    r.get::<_, Option<i64>>(8)?,
                ))
            },
        )
        .optional()
        .map_err(internal)?;
    let Some((family, client, account, user, resource, scope, expires_at, used_at, revoked_at)) = row else {
        return Ok(Refresh::Invalid);
    };
    if client != client_id || revoked_at.is_some() || expires_at <= now {
        return Ok(Refresh::Invalid);
    }
    if used_at.is_some() {
        revoke_family(conn, &family, now)?;
        return Ok(Refresh::Replayed);
    }
    conn.execute("UPDATE oauth_tokens SET used_at = ?2 WHERE token_hash = ?1", params![hash.as_slice(), now])
        .map_err(internal)?;
    let (Ok(account_id), Ok(user_id)) = (AccountId::parse(&account), UserId::parse(&user)) else {
        return Ok(Refresh::Invalid);
    };
    Ok(Refresh::Valid(
        CodeGrant {
            client_id: client,
            account_id,
            user_id,
            redirect_uri: String::new(),
            code_challenge: String::new(),
            resource,
            scope,
        },
        family,
    ))
}

/// Revokes every token of a family.
pub fn revoke_family(conn: &Connection, family: &str, now: i64) -> Result<(), MttrlyError> {
    conn.execute(
        "UPDATE oauth_tokens SET revoked_at = ?2 WHERE family = ?1 AND revoked_at IS NULL",
        params![family, now],
    )
    .map_err(internal)?;
    Ok(())
}

/// Why an access token was refused.
pub enum AccessRefusal {
    /// Unknown, expired or revoked.
    Invalid,
    /// Issued for another resource.
    WrongAudience,
}

/// The owner of a valid access token for `resource`.
pub fn access_owner(
    conn: &Connection,
    hash: &[u8; 32],
    resource: &str,
    now: i64,
) -> Result<Result<TokenOwner, AccessRefusal>, MttrlyError> {
    let row = conn
        .query_row(
            "SELECT t.account_id, a.plan, t.user_id, u.name, u.role, c.client_name, t.resource, t.expires_at, t.revoked_at
             FROM oauth_tokens t JOIN users u ON u.id = t.user_id JOIN accounts a ON a.id = t.account_id
             JOIN oauth_clients c ON c.client_id = t.client_id
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
                ))
            },
        )
        .optional()
        .map_err(internal)?;
    let Some((account, plan, user, name, role, client_name, token_resource, expires_at, revoked_at)) = row else {
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
            session_id: mttrly_core::ids::AssistantSessionId::parse(&format!("ses_{}", hex::encode(&hash[..16])))
                .unwrap_or_else(|_| mttrly_core::ids::AssistantSessionId::generate()),
            client_name,
            on_behalf_of: user_id,
        },
        role: Role::parse(&role),
        user_name: name,
        scope: ToolSurface::ALL,
    }))
}
