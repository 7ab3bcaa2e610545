//! The audit log: reading it, and the queue through which `crate::audit::writer` appends to it.
//!
//! Appends are written by the database's one journal writer (`sqlite/group_commit.rs`), in the
//! same transactions as war-room publishes: one commit and one `fsync` for both streams.

use mttrly_core::audit::AuditKind;
use mttrly_core::ids::{AccountId, ServerId, UserId};
use mttrly_core::tools::actions::AuditEntry;
use mttrly_core::{MttrlyError, Source};

use super::{Account, Db, sqlite};
use crate::audit::chain::{ChainedRow, Verification};

/// One row on its way into an account's chain, as the audit writer hands it to the journal
/// writer. The journal writer asks for the row ([`Appended::row`]) on its own thread, before it
/// takes the database's write lock (redaction and serialisation are most of a row's cost), chains
/// it (`seq`, previous hash, hash) inside the batch's transaction, and after the commit tells the
/// item what became of it, rows in chain order.
pub trait Appended: Send {
    /// The account whose chain the row extends.
    fn account(&self) -> &AccountId;
    /// The row as it will be stored (its `seq` is assigned by the journal writer).
    fn row(&self) -> ChainedRow;
    /// Whether the row may wait a moment for company before its commit: `true` only when no one
    /// waits for it and no one reacts to it (see `crate::events::Recorded::can_wait`). The
    /// journal writer commits every other job at once.
    fn can_wait(&self) -> bool;
    /// The batch committed (the row as stored, and its hash) or failed (nothing of it stored).
    fn committed(self: Box<Self>, result: Result<(ChainedRow, [u8; 32]), MttrlyError>);
}

/// The queue to the journal writer for audit rows. Cheap to clone; see [`Db::audit_appender`].
#[derive(Clone)]
pub struct AuditAppender(sqlite::JournalQueue);

impl AuditAppender {
    /// Queues `item`; `Err` only when the journal writer has stopped (the database is closing).
    pub fn append(&self, item: Box<dyn Appended>) -> Result<(), MttrlyError> {
        self.0.append(item)
    }

    /// Calls `done` once everything queued before it is committed (or has failed).
    pub fn flush(&self, done: tokio::sync::oneshot::Sender<()>) -> Result<(), MttrlyError> {
        self.0.flush(done)
    }
}

impl Db {
    /// The queue for appending audit rows: `crate::audit::AuditLog` is its one user.
    pub fn audit_appender(&self) -> AuditAppender {
        AuditAppender(self.sqlite.journal())
    }
}

/// Filters for [`Audit::list`]. Every filter narrows (they combine with AND); the default
/// matches every row. The SQL binds every value as a parameter.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only rows about this server.
    pub server_id: Option<ServerId>,
    /// Only rows about this subject (an action id, a tool id).
    pub subject: Option<String>,
    /// Only rows by this actor.
    pub actor: Option<ActorFilter>,
    /// Only rows that came through this channel.
    pub source: Option<Source>,
    /// Only rows of this kind.
    pub kind: Option<AuditKind>,
    /// Only rows at or after this time (ms).
    pub since_ms: Option<i64>,
    /// Only rows before this time (ms, exclusive).
    pub until_ms: Option<i64>,
    /// Only rows older than this sequence number.
    pub before_seq: Option<u64>,
    /// At most this many.
    pub limit: u32,
}

/// One page of the log as read ([`Audit::page`]): the rows, and how far the scan got. A row that
/// no longer decodes (written by a newer version, or changed outside mttrly) is not in `entries`
/// but is counted, so a reader paging on `last_scanned` neither stops early at it nor loops.
#[derive(Debug, Clone, Default)]
pub struct AuditPage {
    /// The decoded rows, newest first.
    pub entries: Vec<AuditEntry>,
    /// How many rows matched and were read (decoded or not).
    pub scanned: u32,
    /// How many of them could not be decoded.
    pub undecodable: u32,
    /// The sequence number of the last (oldest) row read.
    pub last_scanned: Option<u64>,
}

impl AuditPage {
    /// The `before_seq` of the next (older) page, when the scan filled `limit` (so more may match).
    pub fn older(&self, limit: u32) -> Option<u64> {
        if self.scanned >= limit { self.last_scanned } else { None }
    }
}

/// Whose rows: a kind of actor, or one person (their own acts, or their assistants' acts for
/// them: an assistant's row names the human it acts for, who answers for it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActorFilter {
    /// Any person acting themselves.
    AnyHuman,
    /// Any assistant session.
    AnyAssistant,
    /// Any server's agent.
    Agent,
    /// Central itself.
    System,
    /// This person, acting themselves.
    Human(UserId),
    /// Assistant sessions acting for this person.
    AssistantFor(UserId),
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

    /// One page of rows matching `filter`, with where the scan stopped ([`AuditPage`]): what
    /// pages through the whole log (the dashboard's pages and exports) uses this, not [`list`],
    /// so an undecodable row cannot end the paging early.
    ///
    /// [`list`]: Self::list
    pub async fn page(&self, filter: &AuditFilter) -> Result<AuditPage, MttrlyError> {
        let (account, filter) = (self.account.id.clone(), filter.clone());
        self.account.db.sqlite.read(move |conn| sqlite::audit::page(conn, &account, &filter)).await
    }

    /// The account's recorded introductions of `user`: every `AddUser` and `InviteUser` row that
    /// names them (by `user_id`), newest first, at or before `until_ms`. Who brought a person in
    /// (or handed out a link that sets their credentials) is what tells an approval by a colleague
    /// from one by an admin's sock puppet (`actions::introduced`).
    pub async fn introductions(&self, user: &UserId, until_ms: i64) -> Result<Vec<AuditEntry>, MttrlyError> {
        let (account, user) = (self.account.id.clone(), user.clone());
        self.account.db.sqlite.read(move |conn| sqlite::audit::introductions(conn, &account, &user, until_ms)).await
    }

    /// The account's chain head: its last row's `seq` and hash (`None` before its first row). One
    /// indexed read: what tells a cached verification whether the log moved since.
    pub async fn head(&self) -> Result<Option<(u64, [u8; 32])>, MttrlyError> {
        let account = self.account.id.clone();
        self.account.db.sqlite.read(move |conn| sqlite::audit::head(conn, &account)).await
    }

    /// Recomputes the account's hash chain from the first row and checks it against the stored
    /// head.
    pub async fn verify(&self) -> Result<Verification, MttrlyError> {
        let account = self.account.id.clone();
        self.account.db.sqlite.read(move |conn| sqlite::audit::verify(conn, &account)).await
    }
}
