//! Accounts, users and API tokens: the SQL.

use mttrly_core::ids::{AccountId, UserId};
use mttrly_core::{MttrlyError, Plan, Principal, ToolSurface};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::internal;
use crate::db::accounts::{Role, TokenOwner, credential_key, derived_session_id};
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

/// Stores the hash of a new token. `assistant` is the assistant's name for assistant tokens.
pub(in crate::db) fn insert_token(
    conn: &Connection,
    hash: &[u8; 32],
    account: &AccountId,
    user: &UserId,
    assistant: Option<&str>,
    scope: &ToolSurface,
) -> Result<(), MttrlyError> {
    let kind = if assistant.is_some() { "assistant" } else { "human" };
    conn.execute(
        "INSERT INTO api_tokens (token_hash, account_id, user_id, kind, assistant_name, created_at, read_only, toolsets)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
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
    )
    .map_err(internal)?;
    Ok(())
}

/// Looks up the owner of a token hash; `None` for unknown or revoked tokens.
pub(in crate::db) fn token_owner(conn: &Connection, hash: &[u8; 32]) -> Result<Option<TokenOwner>, MttrlyError> {
    let row = conn
        .query_row(
            "SELECT t.account_id, a.plan, t.user_id, u.name, u.role, t.kind, t.assistant_name, t.read_only, t.toolsets
             FROM api_tokens t JOIN users u ON u.id = t.user_id JOIN accounts a ON a.id = t.account_id
             WHERE t.token_hash = ?1 AND t.revoked_at IS NULL",
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
    Ok(Some(TokenOwner {
        account_id,
        plan,
        principal,
        role: Role::parse(&role),
        user_name: name,
        scope,
        credential: credential_key(hash),
    }))
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
            "SELECT id FROM users WHERE account_id = ?1 AND role = 'admin' ORDER BY created_at, id LIMIT 1",
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
    insert_token(conn, hash, &account, &admin, assistant, &ToolSurface::ALL)
}
