//! Tenants for those who host several teams: `mttrly-central accounts create NAME --plan P` and
//! `accounts list`, run on central's machine against its data directory (like `init`: whoever can
//! read the data directory already holds every tenant, so no API token could add anything).
//!
//! A new account starts with one admin and no token: the command prints that admin's invite link,
//! where they set a password and a second factor; from there they sign in, add their team and get
//! a CLI token with `mttrly-cli login`. No secret that works is ever printed to the operator who
//! ran the command, so the operator of a shared central cannot act inside the tenants it hosts.

use mttrly_core::approval::config::valid_user_name;
use mttrly_core::ids::{AccountId, UserId};
use mttrly_core::{ErrorCode, MttrlyError, Plan};
use serde::Serialize;

use crate::config::Config;
use crate::db::Db;
use crate::db::tenants::{AccountRow, TenantRefusal};

/// An account just created, with its first admin's invite (shown once).
#[derive(Debug, Clone, Serialize)]
pub struct Created {
    /// The new account.
    pub account_id: AccountId,
    /// Its name.
    pub name: String,
    /// Its plan.
    pub plan: Plan,
    /// The first admin.
    pub admin_user_id: UserId,
    /// The first admin's user name.
    pub admin_name: String,
    /// The single-use link where the admin sets a password and a second factor.
    pub invite_url: String,
    /// When the link stops working (Unix ms).
    pub expires_at: i64,
}

/// Creates an account named `name` on `plan` whose first admin is `admin_name`, and returns the
/// admin's invite. `VALIDATION_ERROR` for a malformed or taken name; nothing is written then.
pub async fn create(
    config: &Config,
    db: &Db,
    name: &str,
    plan: Plan,
    admin_name: &str,
) -> Result<Created, MttrlyError> {
    if !valid_user_name(name) {
        return Err(MttrlyError::new(
            ErrorCode::ValidationError,
            "an account name is 1 to 64 of letters, digits, `.`, `-`, `_`, starting with a letter or digit",
        )
        .with_detail("field", "name"));
    }
    crate::users::check_name(admin_name)?;
    let (secret, hash) = crate::signin::invite::fresh();
    let expires_at = crate::db::now_ms().saturating_add(crate::signin::invite::TTL_MS);
    match db.tenants().create_with_invite(name, plan, admin_name, &hash, expires_at).await? {
        Ok((account_id, admin_user_id)) => Ok(Created {
            account_id,
            name: name.to_owned(),
            plan,
            admin_user_id,
            admin_name: admin_name.to_owned(),
            invite_url: crate::signin::invite::url(
                &crate::app_state::public_base_url(config, config.http_listen),
                &secret,
            ),
            expires_at,
        }),
        Err(TenantRefusal::NameTaken) => Err(MttrlyError::new(
            ErrorCode::ValidationError,
            format!("an account named `{name}` already exists (see `mttrly-central accounts list`)"),
        )
        .with_detail("field", "name")),
    }
}

/// Every account, oldest first.
pub async fn list(db: &Db) -> Result<Vec<AccountRow>, MttrlyError> {
    db.tenants().list().await
}
