//! Tenants as a whole: creating one for another team, listing them. The SQL.

use mttrly_core::ids::{AccountId, UserId};
use mttrly_core::{MttrlyError, Plan, Role};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::internal;
use crate::db::now_ms;
use crate::db::tenants::{AccountRow, TenantRefusal};

/// Creates an account named `name` with its first admin `admin_name`, who signs up through the
/// invite whose secret hashes to `invite_hash`: one IMMEDIATE transaction, so two operators
/// creating the same name at once cannot both succeed, and no account exists without its admin.
pub(in crate::db) fn create_with_invite(
    conn: &mut Connection,
    name: &str,
    plan: Plan,
    admin_name: &str,
    invite_hash: &[u8; 32],
    expires_at: i64,
) -> Result<Result<(AccountId, UserId), TenantRefusal>, MttrlyError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(internal)?;
    let taken: Option<String> = tx
        .query_row("SELECT id FROM accounts WHERE name = ?1", params![name], |r| r.get(0))
        .optional()
        .map_err(internal)?;
    if taken.is_some() {
        return Ok(Err(TenantRefusal::NameTaken));
    }
    let account = super::accounts::create_account(&tx, name, plan)?;
    let admin = super::accounts::create_user(&tx, &account, admin_name, Role::Admin)?;
    super::people::insert_invite(&tx, &account, &admin, invite_hash, expires_at, now_ms())?;
    tx.commit().map_err(internal)?;
    Ok(Ok((account, admin)))
}

/// Every account, oldest first, with its living users and its servers counted.
pub(in crate::db) fn list(conn: &Connection) -> Result<Vec<AccountRow>, MttrlyError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT a.id, a.name, a.plan, a.created_at,
                    (SELECT COUNT(*) FROM users u WHERE u.account_id = a.id AND u.removed_at IS NULL),
                    (SELECT COUNT(*) FROM servers s WHERE s.account_id = a.id)
             FROM accounts a ORDER BY a.created_at, a.id",
        )
        .map_err(internal)?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, i64>(5)?,
            ))
        })
        .map_err(internal)?;
    let mut out = Vec::new();
    for row in rows {
        let (id, name, plan, created_at, users, servers) = row.map_err(internal)?;
        let (Ok(id), Ok(plan)) = (AccountId::parse(&id), plan.parse::<Plan>()) else {
            tracing::error!(%id, %plan, "account row with a malformed id or an unknown plan; skipped");
            continue;
        };
        out.push(AccountRow {
            id,
            name,
            plan,
            created_at,
            users: u64::try_from(users).unwrap_or(0),
            servers: u64::try_from(servers).unwrap_or(0),
        });
    }
    Ok(out)
}
