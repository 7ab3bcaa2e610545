//! Accounts, users and API tokens: the SQL.

use mttrly_core::ids::{AccountId, UserId};
use mttrly_core::{MttrlyError, Plan, Principal, ToolSurface};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::internal;
use mttrly_core::Role;

use crate::db::accounts::{
    FactorGate, GuardFacts, OAUTH_GRANT_PREFIX, Removed, Revoked, TokenKind, TokenOwner, TokenRow, User, UserRefusal,
    credential_key, derived_session_id,
};
use crate::db::now_ms;

/// Creates an account.
pub(in crate::db) fn create_account(conn: &Connection, name: &str, plan: Plan) -> Result<AccountId, MttrlyError> {
    let id = AccountId::generate();
    conn.execute(
        "INSERT INTO accounts (id, name, plan, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![id.as_str(), name, plan.as_str(), now_ms()],
    )
    .map_err(internal)?;
    Ok(id)
}

/// Creates a user in an account.
pub(in crate::db) fn create_user(
    conn: &Connection,
    account: &AccountId,
    name: &str,
    role: Role,
) -> Result<UserId, MttrlyError> {
    let id = UserId::generate();
    conn.execute(
        "INSERT INTO users (id, account_id, name, role, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![id.as_str(), account.as_str(), name, role.as_str(), now_ms()],
    )
    .map_err(internal)?;
    Ok(id)
}

/// Stores the hash of a new token and returns its public id (random, `tkn_` and 32 hex digits).
/// `assistant` is the assistant's name for assistant tokens.
pub(in crate::db) fn insert_token(
    conn: &Connection,
    hash: &[u8; 32],
    account: &AccountId,
    user: &UserId,
    assistant: Option<&str>,
    scope: &ToolSurface,
) -> Result<String, MttrlyError> {
    let kind = if assistant.is_some() { "assistant" } else { "human" };
    conn.query_row(
        "INSERT INTO api_tokens (token_hash, account_id, user_id, kind, assistant_name, created_at, read_only, toolsets, id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'tkn_' || lower(hex(randomblob(16))))
         RETURNING id",
        params![
            hash.as_slice(),
            account.as_str(),
            user.as_str(),
            kind,
            assistant,
            now_ms(),
            scope.read_only,
            scope.toolsets_flag()
        ],
        |r| r.get::<_, String>(0),
    )
    .map_err(internal)
}

/// Looks up the owner of a token hash; `None` for unknown or revoked tokens.
pub(in crate::db) fn token_owner(conn: &Connection, hash: &[u8; 32]) -> Result<Option<TokenOwner>, MttrlyError> {
    let row = conn
        .query_row(
            "SELECT t.account_id, a.plan, t.user_id, u.name, u.role, t.kind, t.assistant_name, t.read_only, t.toolsets
             FROM api_tokens t JOIN users u ON u.id = t.user_id JOIN accounts a ON a.id = t.account_id
             WHERE t.token_hash = ?1 AND t.revoked_at IS NULL AND u.removed_at IS NULL",
            params![hash.as_slice()],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, Option<String>>(6)?,
                    r.get::<_, bool>(7)?,
                    r.get::<_, Option<String>>(8)?,
                ))
            },
        )
        .optional()
        .map_err(internal)?;
    let Some((account, plan, user, name, role, kind, assistant, read_only, toolsets)) = row else {
        return Ok(None);
    };
    let (Ok(account_id), Ok(plan), Ok(user_id)) =
        (AccountId::parse(&account), plan.parse::<Plan>(), UserId::parse(&user))
    else {
        tracing::error!(%account, "token row references malformed ids");
        return Ok(None);
    };
    let principal = if kind == "assistant" {
        Principal::Assistant {
            // A bearer token stands for one long-lived assistant session: the session id is derived
            // from the token hash so audit rows of the same token group together.
            session_id: derived_session_id(hash),
            client_name: assistant.unwrap_or_else(|| "assistant".to_owned()),
            on_behalf_of: user_id,
        }
    } else {
        Principal::Human { user_id, name: name.clone() }
    };
    let Ok(scope) = ToolSurface::from_stored(read_only, toolsets.as_deref()) else {
        tracing::error!(%account, "token row has a malformed scope; refusing it");
        return Ok(None);
    };
    let Ok(role) = role.parse::<Role>() else {
        tracing::error!(%account, %role, "user row has an unknown role; refusing the token");
        return Ok(None);
    };
    Ok(Some(TokenOwner { account_id, plan, principal, role, user_name: name, scope, credential: credential_key(hash) }))
}

/// The first account (by creation), if `init` has run.
pub(in crate::db) fn first_account(conn: &Connection) -> Result<Option<(AccountId, Plan)>, MttrlyError> {
    let row = conn
        .query_row("SELECT id, plan FROM accounts ORDER BY created_at, id LIMIT 1", [], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })
        .optional()
        .map_err(internal)?;
    Ok(row.and_then(|(id, plan)| Some((AccountId::parse(&id).ok()?, plan.parse().ok()?))))
}

/// The first admin of an account.
pub(in crate::db) fn first_admin(conn: &Connection, account: &AccountId) -> Result<Option<UserId>, MttrlyError> {
    let row = conn
        .query_row(
            "SELECT id FROM users WHERE account_id = ?1 AND role = 'admin' AND removed_at IS NULL ORDER BY created_at, id LIMIT 1",
            params![account.as_str()],
            |r| r.get::<_, String>(0),
        )
        .optional()
        .map_err(internal)?;
    Ok(row.and_then(|id| UserId::parse(&id).ok()))
}

/// An account's plan.
pub(in crate::db) fn plan(conn: &Connection, account: &AccountId) -> Result<Option<Plan>, MttrlyError> {
    let row = conn
        .query_row("SELECT plan FROM accounts WHERE id = ?1", params![account.as_str()], |r| r.get::<_, String>(0))
        .optional()
        .map_err(internal)?;
    Ok(row.and_then(|p| p.parse().ok()))
}

/// Creates an account (a tenant) with its first admin, whose token hash is `token_hash`.
pub(in crate::db) fn create_tenant(
    conn: &Connection,
    name: &str,
    plan: Plan,
    admin_name: &str,
    token_hash: &[u8; 32],
) -> Result<(AccountId, UserId), MttrlyError> {
    let account = create_account(conn, name, plan)?;
    let admin = create_user(conn, &account, admin_name, Role::Admin)?;
    insert_token(conn, token_hash, &account, &admin, None, &ToolSurface::ALL)?;
    Ok((account, admin))
}

/// Creates the first tenant (see [`create_tenant`]) in one IMMEDIATE transaction, unless the
/// database already has an account: then `None`, and nothing is written.
pub(in crate::db) fn init(
    conn: &mut Connection,
    name: &str,
    plan: Plan,
    admin_name: &str,
    token_hash: &[u8; 32],
) -> Result<Option<(AccountId, UserId)>, MttrlyError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(internal)?;
    if first_account(&tx)?.is_some() {
        return Ok(None);
    }
    let created = create_tenant(&tx, name, plan, admin_name, token_hash)?;
    tx.commit().map_err(internal)?;
    Ok(Some(created))
}

/// Stores an API token of the first account's first admin, reaching every tool. `INTERNAL_ERROR`
/// naming what is missing when there is no account or no admin (`init` has not run).
pub(in crate::db) fn insert_first_admin_token(
    conn: &Connection,
    hash: &[u8; 32],
    assistant: Option<&str>,
) -> Result<(), MttrlyError> {
    let missing = |what: &str| MttrlyError::new(mttrly_core::ErrorCode::InternalError, what);
    let (account, _) = first_account(conn)?.ok_or_else(|| missing("no account in the database"))?;
    let admin = first_admin(conn, &account)?.ok_or_else(|| missing("no admin in the account"))?;
    insert_token(conn, hash, &account, &admin, assistant, &ToolSurface::ALL).map(drop)
}

/// The columns [`user_at`] reads.
const USER_COLUMNS: &str = "id, name, role, email, created_at";

/// A user from [`USER_COLUMNS`]; `None` (logged) for a row this build cannot read.
fn user_at(r: &rusqlite::Row<'_>) -> rusqlite::Result<Option<User>> {
    let (id, name, role) = (r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?);
    let (Ok(id), Ok(role)) = (UserId::parse(&id), role.parse::<Role>()) else {
        tracing::error!(%id, %role, "user row with a malformed id or an unknown role; skipped");
        return Ok(None);
    };
    Ok(Some(User { id, name, role, email: r.get(3)?, created_at: r.get(4)? }))
}

/// The account's living users, oldest first.
pub(in crate::db) fn list_users(conn: &Connection, account: &AccountId) -> Result<Vec<User>, MttrlyError> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE account_id = ?1 AND removed_at IS NULL ORDER BY created_at, id"
        ))
        .map_err(internal)?;
    let rows = stmt.query_map(params![account.as_str()], user_at).map_err(internal)?;
    let mut users = Vec::new();
    for row in rows {
        users.extend(row.map_err(internal)?);
    }
    Ok(users)
}

/// The living user of the account with this name.
fn living_user(conn: &Connection, account: &AccountId, name: &str) -> Result<Option<User>, MttrlyError> {
    conn.query_row(
        &format!("SELECT {USER_COLUMNS} FROM users WHERE account_id = ?1 AND name = ?2 AND removed_at IS NULL"),
        params![account.as_str(), name],
        user_at,
    )
    .optional()
    .map(Option::flatten)
    .map_err(internal)
}

/// How many living admins the account has.
fn admins(conn: &Connection, account: &AccountId) -> Result<i64, MttrlyError> {
    conn.query_row(
        "SELECT COUNT(*) FROM users WHERE account_id = ?1 AND role = 'admin' AND removed_at IS NULL",
        params![account.as_str()],
        |r| r.get(0),
    )
    .map_err(internal)
}

/// Whether taking `user` out of the admins leaves the account without one.
fn is_last_admin(conn: &Connection, account: &AccountId, user: &User) -> Result<bool, MttrlyError> {
    Ok(user.role == Role::Admin && admins(conn, account)? <= 1)
}

/// Whether a living admin of the account has a confirmed second factor: "the account uses
/// second factors" (`crate::users`).
pub(in crate::db) fn factors_in_use(conn: &Connection, account: &AccountId) -> Result<bool, MttrlyError> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM users u JOIN user_credentials c ON c.user_id = u.id AND c.account_id = u.account_id
                        WHERE u.account_id = ?1 AND u.role = 'admin' AND u.removed_at IS NULL
                          AND c.totp_sealed IS NOT NULL)",
        params![account.as_str()],
        |r| r.get(0),
    )
    .map_err(internal)
}

/// Whether a removed user of the account had this name.
pub(in crate::db) fn name_removed(conn: &Connection, account: &AccountId, name: &str) -> Result<bool, MttrlyError> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM users WHERE account_id = ?1 AND name = ?2 AND removed_at IS NOT NULL)",
        params![account.as_str(), name],
        |r| r.get(0),
    )
    .map_err(internal)
}

/// Whether this user of the account has a confirmed second factor.
pub(in crate::db) fn has_factor(conn: &Connection, account: &AccountId, user: &UserId) -> Result<bool, MttrlyError> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM user_credentials WHERE account_id = ?1 AND user_id = ?2 AND totp_sealed IS NOT NULL)",
        params![account.as_str(), user.as_str()],
        |r| r.get(0),
    )
    .map_err(internal)
}

/// The facts the second-factor rule looks at for a change about `name`.
pub(in crate::db) fn guard_facts(
    conn: &Connection,
    account: &AccountId,
    name: &str,
) -> Result<GuardFacts, MttrlyError> {
    let target = match living_user(conn, account, name)? {
        Some(user) => {
            let enrolled = has_factor(conn, account, &user.id)?;
            Some((user, enrolled))
        }
        None => None,
    };
    Ok(GuardFacts {
        factors_in_use: factors_in_use(conn, account)?,
        name_removed: name_removed(conn, account, name)?,
        target,
    })
}

/// Whether `gate` refuses an addition of `name` with `role` (`with_token`: a token that skips
/// enrolment), judged in the adding transaction.
pub(in crate::db) fn addition_refused(
    conn: &Connection,
    account: &AccountId,
    name: &str,
    role: Role,
    with_token: bool,
    gate: FactorGate,
) -> Result<bool, MttrlyError> {
    let FactorGate::Checked { code_verified: false } = gate else { return Ok(false) };
    if !factors_in_use(conn, account)? {
        return Ok(false);
    }
    Ok(with_token || role == Role::Admin || name_removed(conn, account, name)?)
}

/// Adds a user and their first human token in one IMMEDIATE transaction.
pub(in crate::db) fn add_user_with_token(
    conn: &mut Connection,
    account: &AccountId,
    name: &str,
    role: Role,
    email: Option<&str>,
    token_hash: &[u8; 32],
    gate: FactorGate,
) -> Result<Result<(User, String), UserRefusal>, MttrlyError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(internal)?;
    if living_user(&tx, account, name)?.is_some() {
        return Ok(Err(UserRefusal::NameTaken));
    }
    if let Some(email) = email
        && super::people::email_taken(&tx, account, email)?
    {
        return Ok(Err(UserRefusal::EmailTaken));
    }
    if addition_refused(&tx, account, name, role, true, gate)? {
        return Ok(Err(UserRefusal::SecondFactorRequired));
    }
    let id = create_user(&tx, account, name, role)?;
    tx.execute("UPDATE users SET email = ?2 WHERE id = ?1", params![id.as_str(), email]).map_err(internal)?;
    let token_id = insert_token(&tx, token_hash, account, &id, None, &ToolSurface::ALL)?;
    let user = living_user(&tx, account, name)?.ok_or_else(|| {
        MttrlyError::new(mttrly_core::ErrorCode::InternalError, "the new user could not be read back")
    })?;
    tx.commit().map_err(internal)?;
    Ok(Ok((user, token_id)))
}

/// Changes a living user's role in one IMMEDIATE transaction (so two demotions cannot both see
/// another admin), unless it demotes the last admin. Returns the user as they were.
pub(in crate::db) fn set_role(
    conn: &mut Connection,
    account: &AccountId,
    name: &str,
    role: Role,
    gate: FactorGate,
) -> Result<Result<User, UserRefusal>, MttrlyError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(internal)?;
    let Some(user) = living_user(&tx, account, name)? else { return Ok(Err(UserRefusal::NotFound)) };
    if role != Role::Admin && is_last_admin(&tx, account, &user)? {
        return Ok(Err(UserRefusal::LastAdmin));
    }
    let unverified = gate == (FactorGate::Checked { code_verified: false });
    if unverified && role == Role::Admin && user.role != Role::Admin && factors_in_use(&tx, account)? {
        return Ok(Err(UserRefusal::SecondFactorRequired));
    }
    // Roles order from most to least powerful: a greater role is a weaker one. Lowering an admin
    // protected by a second factor is out-ranking them and can switch the gate off: where the
    // account uses second factors it needs a factor of the caller's own too (elsewhere a token may
    // enrol one first, so a code would prove nothing).
    if unverified
        && role > user.role
        && user.role == Role::Admin
        && has_factor(&tx, account, &user.id)?
        && factors_in_use(&tx, account)?
    {
        return Ok(Err(UserRefusal::SecondFactorRequired));
    }
    tx.execute("UPDATE users SET role = ?2 WHERE id = ?1", params![user.id.as_str(), role.as_str()])
        .map_err(internal)?;
    tx.commit().map_err(internal)?;
    Ok(Ok(user))
}

/// Removes a living user (unless the last admin) and revokes their API tokens and OAuth tokens,
/// in one IMMEDIATE transaction. A checked `gate` without a verified code refuses the removal
/// of an admin with a confirmed second factor in an account that uses second factors (judged
/// here, so an enrolment landing after the caller's look still counts).
pub(in crate::db) fn remove_user(
    conn: &mut Connection,
    account: &AccountId,
    name: &str,
    gate: FactorGate,
) -> Result<Result<Removed, UserRefusal>, MttrlyError> {
    let now = now_ms();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(internal)?;
    let Some(user) = living_user(&tx, account, name)? else { return Ok(Err(UserRefusal::NotFound)) };
    if is_last_admin(&tx, account, &user)? {
        return Ok(Err(UserRefusal::LastAdmin));
    }
    if gate == (FactorGate::Checked { code_verified: false })
        && user.role == Role::Admin
        && has_factor(&tx, account, &user.id)?
        && factors_in_use(&tx, account)?
    {
        return Ok(Err(UserRefusal::SecondFactorRequired));
    }
    tx.execute("UPDATE users SET removed_at = ?2 WHERE id = ?1", params![user.id.as_str(), now]).map_err(internal)?;
    let api = tx
        .execute(
            "UPDATE api_tokens SET revoked_at = ?3 WHERE account_id = ?1 AND user_id = ?2 AND revoked_at IS NULL",
            params![account.as_str(), user.id.as_str(), now],
        )
        .map_err(internal)?;
    let oauth = tx
        .execute(
            "UPDATE oauth_tokens SET revoked_at = ?3 WHERE account_id = ?1 AND user_id = ?2 AND revoked_at IS NULL",
            params![account.as_str(), user.id.as_str(), now],
        )
        .map_err(internal)?;
    // Their browser sessions end and their invites die with them (`db/sqlite/people.rs`).
    tx.execute(
        "UPDATE web_sessions SET ended_at = ?3 WHERE account_id = ?1 AND user_id = ?2 AND ended_at IS NULL",
        params![account.as_str(), user.id.as_str(), now],
    )
    .map_err(internal)?;
    tx.execute(
        "UPDATE invites SET revoked_at = ?3 WHERE account_id = ?1 AND user_id = ?2 AND used_at IS NULL AND revoked_at IS NULL",
        params![account.as_str(), user.id.as_str(), now],
    )
    .map_err(internal)?;
    tx.commit().map_err(internal)?;
    Ok(Ok(Removed { user, revoked_tokens: api + oauth }))
}

/// A token row from the shared column order of both halves of [`list_tokens`]'s query.
fn token_at(r: &rusqlite::Row<'_>) -> rusqlite::Result<Option<TokenRow>> {
    let (id, kind, owner, read_only, toolsets) = (
        r.get::<_, String>(0)?,
        r.get::<_, String>(1)?,
        r.get::<_, String>(2)?,
        r.get::<_, bool>(5)?,
        r.get::<_, Option<String>>(6)?,
    );
    let kind = match kind.as_str() {
        "human" => TokenKind::Human,
        "assistant" => TokenKind::Assistant,
        _ => TokenKind::OAuth,
    };
    let (Ok(owner_id), Ok(scope)) = (UserId::parse(&owner), ToolSurface::from_stored(read_only, toolsets.as_deref()))
    else {
        tracing::error!(%id, "token row with a malformed owner or scope; skipped");
        return Ok(None);
    };
    Ok(Some(TokenRow {
        id,
        kind,
        owner_id,
        owner_name: r.get(3)?,
        name: r.get(4)?,
        scope,
        created_at: r.get(7)?,
        last_used_at: r.get(8)?,
    }))
}

/// The account's live API tokens and OAuth grants (a grant is live while one of its tokens is
/// unrevoked and unexpired), or only `owner`'s; oldest first.
pub(in crate::db) fn list_tokens(
    conn: &Connection,
    account: &AccountId,
    owner: Option<&UserId>,
    now: i64,
) -> Result<Vec<TokenRow>, MttrlyError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT t.id, t.kind, t.user_id, u.name, t.assistant_name, t.read_only, t.toolsets, t.created_at, t.last_used_at
             FROM api_tokens t JOIN users u ON u.id = t.user_id
             WHERE t.account_id = ?1 AND t.revoked_at IS NULL AND u.removed_at IS NULL AND (?2 IS NULL OR t.user_id = ?2)
             UNION ALL
             SELECT ?4 || o.family, 'oauth', o.user_id, u.name, c.client_name, MAX(o.read_only), MAX(o.toolsets),
                    MIN(o.created_at), MAX(o.used_at)
             FROM oauth_tokens o JOIN users u ON u.id = o.user_id JOIN oauth_clients c ON c.client_id = o.client_id
             WHERE o.account_id = ?1 AND (?2 IS NULL OR o.user_id = ?2) AND u.removed_at IS NULL
             GROUP BY o.family
             HAVING SUM(o.revoked_at IS NULL AND o.expires_at > ?3) > 0
             ORDER BY 8, 1",
        )
        .map_err(internal)?;
    let rows = stmt
        .query_map(params![account.as_str(), owner.map(UserId::as_str), now, OAUTH_GRANT_PREFIX], token_at)
        .map_err(internal)?;
    let mut tokens = Vec::new();
    for row in rows {
        tokens.extend(row.map_err(internal)?);
    }
    Ok(tokens)
}

/// Each live grant's absolute end, by public id.
pub(in crate::db) fn grant_ends(
    conn: &Connection,
    account: &AccountId,
) -> Result<std::collections::HashMap<String, i64>, MttrlyError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT ?2 || family, MAX(grant_expires_at) FROM oauth_tokens
             WHERE account_id = ?1 AND revoked_at IS NULL GROUP BY family",
        )
        .map_err(internal)?;
    let rows = stmt
        .query_map(params![account.as_str(), OAUTH_GRANT_PREFIX], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
        .map_err(internal)?;
    let mut ends = std::collections::HashMap::new();
    for row in rows {
        let (id, end) = row.map_err(internal)?;
        ends.insert(id, end);
    }
    Ok(ends)
}

/// Revokes one live credential of the account by its public id (held by `owner`, when given).
pub(in crate::db) fn revoke_token(
    conn: &Connection,
    account: &AccountId,
    id: &str,
    owner: Option<&UserId>,
    now: i64,
) -> Result<Option<Revoked>, MttrlyError> {
    let owner = owner.map(UserId::as_str);
    if let Some(family) = id.strip_prefix(OAUTH_GRANT_PREFIX) {
        let revoked = conn
            .execute(
                "UPDATE oauth_tokens SET revoked_at = ?4
                 WHERE family = ?1 AND account_id = ?2 AND (?3 IS NULL OR user_id = ?3) AND revoked_at IS NULL",
                params![family, account.as_str(), owner, now],
            )
            .map_err(internal)?;
        return Ok((revoked > 0).then_some(Revoked::OAuthGrant));
    }
    // One transaction: the token, and the chat links its holder made with it (a link decides as
    // its person, so it must not outlive the credential that vouched for it).
    let tx = conn.unchecked_transaction().map_err(internal)?;
    let hash = tx
        .query_row(
            "UPDATE api_tokens SET revoked_at = ?4
             WHERE id = ?1 AND account_id = ?2 AND (?3 IS NULL OR user_id = ?3) AND revoked_at IS NULL
             RETURNING token_hash",
            params![id, account.as_str(), owner, now],
            |r| r.get::<_, Vec<u8>>(0),
        )
        .optional()
        .map_err(internal)?;
    let hash = hash.and_then(|h| <[u8; 32]>::try_from(h.as_slice()).ok());
    if let Some(hash) = &hash {
        super::chat::forget_credential(&tx, &credential_key(hash))?;
    }
    tx.commit().map_err(internal)?;
    Ok(hash.map(Revoked::ApiToken))
}

/// Records last uses (hash, Unix ms) in one transaction; a use never moves the time back.
pub(in crate::db) fn touch_tokens(conn: &mut Connection, uses: &[([u8; 32], i64)]) -> Result<(), MttrlyError> {
    let tx = conn.transaction().map_err(internal)?;
    {
        let mut stmt = tx
            .prepare_cached(
                "UPDATE api_tokens SET last_used_at = ?2
                 WHERE token_hash = ?1 AND (last_used_at IS NULL OR last_used_at < ?2)",
            )
            .map_err(internal)?;
        for (hash, at) in uses {
            stmt.execute(params![hash.as_slice(), at]).map_err(internal)?;
        }
    }
    tx.commit().map_err(internal)
}

/// See [`crate::db::accounts::Users::credential_live`]. A key of another shape names no
/// credential a stream can hold: not live.
pub(in crate::db) fn credential_live(
    conn: &Connection,
    account: &AccountId,
    user: &UserId,
    credential: &str,
    now: i64,
) -> Result<bool, MttrlyError> {
    if let Some(head) = credential.strip_prefix("tok_") {
        // The key is the first half of the token's SHA-256; anything shorter would match many.
        let Ok(head) = hex::decode(head) else { return Ok(false) };
        if head.len() != 16 {
            return Ok(false);
        }
        return conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM api_tokens t JOIN users u ON u.id = t.user_id
                                WHERE t.account_id = ?1 AND t.user_id = ?2 AND substr(t.token_hash, 1, 16) = ?3
                                  AND t.revoked_at IS NULL AND u.removed_at IS NULL)",
                params![account.as_str(), user.as_str(), head],
                |r| r.get(0),
            )
            .map_err(internal);
    }
    if let Some(family) = credential.strip_prefix("oauth_") {
        return conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM oauth_tokens t JOIN users u ON u.id = t.user_id
                                LEFT JOIN api_tokens h ON h.token_hash = t.human_token_hash
                                WHERE t.account_id = ?1 AND t.user_id = ?2 AND t.family = ?3 AND t.kind = 'access'
                                  AND t.revoked_at IS NULL AND t.expires_at > ?4 AND u.removed_at IS NULL
                                  AND (t.human_token_hash IS NULL OR (h.token_hash IS NOT NULL AND h.revoked_at IS NULL)))",
                params![account.as_str(), user.as_str(), family, now],
                |r| r.get(0),
            )
            .map_err(internal);
    }
    Ok(false)
}
