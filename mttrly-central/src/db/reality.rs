//! The latest service-reality snapshot per server.

use mttrly_core::MttrlyError;
use mttrly_core::ids::ServerId;

use super::{Account, sqlite};

/// A tenant's reality snapshots, one per server. Built by [`Account::reality`].
pub struct Reality<'a> {
    pub(super) account: Account<'a>,
}

impl Reality<'_> {
    /// Stores (replaces) `server`'s snapshot, captured at `at_ms`, as JSON.
    pub async fn put(&self, server: &ServerId, at_ms: i64, json: String) -> Result<(), MttrlyError> {
        let (account, server) = (self.account.id.clone(), server.clone());
        self.account.db.sqlite.call(move |conn| sqlite::reality::put(conn, &account, &server, at_ms, &json)).await
    }

    /// `server`'s snapshot JSON, if one was stored.
    pub async fn get(&self, server: &ServerId) -> Result<Option<String>, MttrlyError> {
        let (account, server) = (self.account.id.clone(), server.clone());
        self.account.db.sqlite.read(move |conn| sqlite::reality::get(conn, &account, &server)).await
    }
}
