//! A tenant's knowledge base: postmortems, recipes and notes, and their full-text index.
//!
//! Entries are immutable once written (a correction is a new entry); removal is a soft delete
//! that drops the entry from the index in the same statement (a trigger), so a removed entry is
//! never found again while its row stays for the audit trail.

use mttrly_core::MttrlyError;
use mttrly_core::ids::{KnowledgeId, ServerId};
use mttrly_core::principal::Principal;
use mttrly_core::tools::knowledge::{KnowledgeEntry, KnowledgeHit, KnowledgeKind, KnowledgeSource};

use super::{Account, sqlite};

/// An entry to store. Its text is already redacted and its hash computed over the stored body.
#[derive(Debug, Clone)]
pub struct NewKnowledge {
    /// Its id.
    pub id: KnowledgeId,
    /// What it is.
    pub kind: KnowledgeKind,
    /// Its title (redacted).
    pub title: String,
    /// Its text (redacted).
    pub body: String,
    /// The server it concerns, if any (already checked to be the account's).
    pub server_id: Option<ServerId>,
    /// Who wrote it.
    pub author: Principal,
    /// Through which channel.
    pub source: KnowledgeSource,
    /// SHA-256 (hex) of `body`.
    pub content_sha256: String,
    /// When (ms).
    pub created_at: i64,
}

/// What storing a window's entry did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upserted {
    /// No entry had the window: a new one.
    Created,
    /// The window's entry already said the same.
    Unchanged,
    /// The window's entry was rewritten with the new content.
    Updated,
}

/// A search, its terms already turned into a safe `MATCH` expression.
#[derive(Debug, Clone)]
pub struct KnowledgeSearch {
    /// The FTS5 expression (quoted terms only: see `mttrly_core::tools::knowledge::fts_match`).
    pub fts_match: String,
    /// The server whose entries rank first.
    pub server_id: Option<ServerId>,
    /// Only that server's entries.
    pub server_only: bool,
    /// Only this kind.
    pub kind: Option<KnowledgeKind>,
    /// Only entries created at or before this time (ms).
    pub created_until_ms: Option<i64>,
    /// At most this many.
    pub limit: u32,
}

/// Filters of [`Knowledge::list`].
#[derive(Debug, Clone, Default)]
pub struct KnowledgeFilter {
    /// Only this kind.
    pub kind: Option<KnowledgeKind>,
    /// Only this server's entries.
    pub server_id: Option<ServerId>,
    /// At most this many, newest first.
    pub limit: u32,
}

/// A tenant's knowledge. Built by [`Account::knowledge`].
pub struct Knowledge<'a> {
    pub(super) account: Account<'a>,
}

impl Knowledge<'_> {
    /// Stores `entry`. With `reuse_identical`, a living entry of the same kind, server and
    /// content hash is returned instead (`true` beside it), checked and written in one
    /// transaction: regenerating a retrospective from the same records stores it once.
    pub async fn add(&self, entry: NewKnowledge, reuse_identical: bool) -> Result<(KnowledgeEntry, bool), MttrlyError> {
        let account = self.account.id.clone();
        self.account.db.sqlite.call(move |conn| sqlite::knowledge::add(conn, &account, &entry, reuse_identical)).await
    }

    /// Stores `entry` as the one living entry of `window_key` (a retrospective's incident
    /// window): created, left unchanged, or rewritten in place with the same id.
    pub async fn upsert_window(
        &self,
        entry: NewKnowledge,
        window_key: String,
    ) -> Result<(KnowledgeEntry, Upserted), MttrlyError> {
        let account = self.account.id.clone();
        self.account
            .db
            .sqlite
            .call(move |conn| sqlite::knowledge::upsert_window(conn, &account, &entry, &window_key))
            .await
    }

    /// A living entry.
    pub async fn get(&self, id: &KnowledgeId) -> Result<Option<KnowledgeEntry>, MttrlyError> {
        let (account, id) = (self.account.id.clone(), id.clone());
        self.account.db.sqlite.read(move |conn| sqlite::knowledge::get(conn, &account, &id)).await
    }

    /// Living entries matching `filter`, newest first.
    pub async fn list(&self, filter: &KnowledgeFilter) -> Result<Vec<KnowledgeEntry>, MttrlyError> {
        let (account, filter) = (self.account.id.clone(), filter.clone());
        self.account.db.sqlite.read(move |conn| sqlite::knowledge::list(conn, &account, &filter)).await
    }

    /// Soft-deletes a living entry (and drops it from the index) at `now`; `None` when there is
    /// no living entry with that id in this account.
    pub async fn remove(&self, id: &KnowledgeId, now: i64) -> Result<Option<KnowledgeEntry>, MttrlyError> {
        let (account, id) = (self.account.id.clone(), id.clone());
        self.account.db.sqlite.call(move |conn| sqlite::knowledge::remove(conn, &account, &id, now)).await
    }

    /// Living entries matching `search`, best first (same-server entries before the others).
    pub async fn search(&self, search: &KnowledgeSearch) -> Result<Vec<KnowledgeHit>, MttrlyError> {
        let (account, search) = (self.account.id.clone(), search.clone());
        self.account.db.sqlite.read(move |conn| sqlite::knowledge::search(conn, &account, &search)).await
    }
}
