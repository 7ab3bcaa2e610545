//! Tenants as a whole (non-tenant operations): `mttrly-central accounts create | list`, run by
//! whoever operates the central for several teams. Nothing here reads one tenant's data.

use mttrly_core::Plan;
use mttrly_core::ids::{AccountId, UserId};
use serde::Serialize;

use super::Db;
use crate::db::sqlite;
use mttrly_core::MttrlyError;

/// An account as `accounts list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccountRow {
    /// Its id.
    pub id: AccountId,
    /// Its name (unique among accounts created by `accounts create`).
    pub name: String,
    /// Its plan.
    pub plan: Plan,
    /// When it was created (Unix ms).
    pub created_at: i64,
    /// Its users, removed ones left out.
    pub users: u64,
    /// Its registered servers.
    pub servers: u64,
}

/// Why an account could not be created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TenantRefusal {
    /// Another account has this name.
    NameTaken,
}

/// The tenants operations.
#[derive(Clone, Copy)]
pub struct Tenants<'a> {
    pub(super) db: &'a Db,
}

impl Tenants<'_> {
    /// Creates an account with its first admin, who signs up through the invite `invite_hash`.
    pub async fn create_with_invite(
        &self,
        name: &str,
        plan: Plan,
        admin_name: &str,
        invite_hash: &[u8; 32],
        expires_at: i64,
    ) -> Result<Result<(AccountId, UserId), TenantRefusal>, MttrlyError> {
        let (name, admin, hash) = (name.to_owned(), admin_name.to_owned(), *invite_hash);
        self.db
            .sqlite
            .call(move |conn| sqlite::tenants::create_with_invite(conn, &name, plan, &admin, &hash, expires_at))
            .await
    }

    /// Every account, oldest first.
    pub async fn list(&self) -> Result<Vec<AccountRow>, MttrlyError> {
        self.db.sqlite.read(sqlite::tenants::list).await
    }
}
