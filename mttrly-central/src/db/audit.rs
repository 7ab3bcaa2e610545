//! Reading the audit log. Writes belong to `crate::audit::writer`, the one writer.

use mttrly_core::MttrlyError;
use mttrly_core::ids::{ServerId, UserId};
use mttrly_core::tools::actions::AuditEntry;

use super::{Account, sqlite};
use crate::audit::chain::Verification;

/// Filters for [`Audit::list`].
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only rows about this server.
    pub server_id: Option<ServerId>,
    /// Only rows about this subject (an action id, a tool id).
    pub subject: Option<String>,
    /// Only rows older than this sequence number.
    pub before_seq: Option<u64>,
    /// At most this many.
    pub limit: u32,
}

/// A tenant's audit log. Built by [`Account::audit`].
pub struct Audit<'a> {
    pub(super) account: Account<'a>,
}

impl Audit<'_> {
    /// The account's rows matching `filter`, newest first.
    pub async fn list(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, MttrlyError> {
        let (account, filter) = (self.account.id.clone(), filter.clone());
        self.account.db.sqlite.read(move |conn| sqlite::audit::list(conn, &account, &filter)).await
    }

    /// The account's recorded introductions of `user`: every `AddUser` and `InviteUser` row that
    /// names them (by `user_id`), newest first, at or before `until_ms`. Who brought a person in
    /// (or handed out a link that sets their credentials) is what tells an approval by a colleague
    /// from one by an admin's sock puppet (`actions::introduced`).
    pub async fn introductions(&self, user: &UserId, until_ms: i64) -> Result<Vec<AuditEntry>, MttrlyError> {
        let (account, user) = (self.account.id.clone(), user.clone());
        self.account.db.sqlite.read(move |conn| sqlite::audit::introductions(conn, &account, &user, until_ms)).await
    }

    /// Recomputes the account's hash chain from the first row and checks it against the stored
    /// head.
    pub async fn verify(&self) -> Result<Verification, MttrlyError> {
        let account = self.account.id.clone();
        self.account.db.sqlite.read(move |conn| sqlite::audit::verify(conn, &account)).await
    }
}
