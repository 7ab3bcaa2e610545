//! The SQLite backend: one file in WAL mode, its migrations, and the SQL of every operation.
//!
//! Nothing here is visible outside `db/`: the handles in the parent module are the only callers.
//! Each sibling module holds the queries of one domain as plain functions over a `Connection`.
//! Two ways in, so no SQLite work ever blocks a runtime worker: [`Sqlite::call`] runs an operation
//! that writes (or must see its own transaction) on tokio's blocking pool with the one writer
//! connection; [`Sqlite::read`] runs a read-only operation on one of the reader threads
//! (`readers.rs`: each its own read-only connection, beside the writer thanks to WAL).
//! Multi-step transactions are single functions here (IMMEDIATE, so they serialise with every
//! other writer). Notifications and audit rows are written by the journal writer
//! (`group_commit.rs`), one thread on the same writer connection.

pub(in crate::db) mod accounts;
pub(in crate::db) mod actions;
pub(in crate::db) mod alerts;
pub(in crate::db) mod audit;
pub(in crate::db) mod chat;
pub(in crate::db) mod deploys;
pub(in crate::db) mod device;
mod group_commit;
pub(in crate::db) use group_commit::JournalQueue;
#[cfg(test)]
pub(in crate::db) use group_commit::commit_batch;
pub(in crate::db) mod investigations;
pub(in crate::db) mod knowledge;
pub(in crate::db) mod metrics;
mod migrations;
pub(in crate::db) mod oauth;
pub(in crate::db) mod oidc;
pub(in crate::db) mod people;
pub(in crate::db) mod proactive;
mod readers;
pub(in crate::db) mod reality;
pub(in crate::db) mod releases;
pub(in crate::db) mod servers;
pub(in crate::db) mod tenants;
mod threads;
pub(in crate::db) mod timeline;
pub(in crate::db) mod warroom;

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use mttrly_core::{ErrorCode, MttrlyError};
use rusqlite::Connection;

use super::OpenError;

/// The most bytes a WAL keeps on disk once it starts over (64 MiB).
const WAL_SIZE_LIMIT: i64 = 64 * 1024 * 1024;

/// Most reader threads (and read-only connections) one database gets.
const MAX_READERS: usize = 4;

/// The writer connection behind a mutex (SQLite serialises writers anyway), and the readers.
#[derive(Clone)]
pub(in crate::db) struct Sqlite {
    conn: Arc<Mutex<Connection>>,
    readers: Arc<readers::Readers>,
    /// Notifications and audit rows go through group commit (`group_commit.rs`, the journal
    /// writer) on the same connection.
    publisher: Arc<group_commit::Publisher>,
}

impl Sqlite {
    /// Opens (creating if needed) and migrates the database at `path`.
    pub(in crate::db) fn open(path: &Path) -> Result<Self, OpenError> {
        let display = path.display().to_string();
        let sqlite = |source: rusqlite::Error| OpenError::Storage { path: display.clone(), source: Box::new(source) };
        owner_only(path);
        let mut conn = Connection::open(path).map_err(sqlite)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(sqlite)?;
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(sqlite)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(sqlite)?;
        // A WAL that grew under a burst (checkpoints copy it back into the database, then the
        // next writer starts it over from the top) is cut back to this size when it starts over,
        // instead of keeping its largest size on disk forever.
        conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT).map_err(sqlite)?;
        conn.busy_handler(Some(busy_wait)).map_err(sqlite)?;
        migrations::apply(&mut conn, &display)?;
        // Readers open after the migrations, on the file the writer put in WAL mode (a path, never
        // `:memory:`: each connection would get a database of its own). One per core, at least two
        // so a long read never queues the short ones behind it.
        let count = std::thread::available_parallelism().map_or(2, usize::from).clamp(2, MAX_READERS);
        let readers = readers::Readers::start(path, count).map_err(sqlite)?;
        let conn = Arc::new(Mutex::new(conn));
        let publisher = group_commit::Publisher::start(Arc::clone(&conn), group_commit::LINGER)
            .map_err(|e| OpenError::storage(path, e))?;
        Ok(Self { conn, readers: Arc::new(readers), publisher: Arc::new(publisher) })
    }

    /// Runs a read-only `f` on a reader thread's own connection. It sees every write whose
    /// operation has returned; a statement that writes fails there (the connection is read-only),
    /// so an operation that writes, or reads inside its own transaction, uses [`Sqlite::call`].
    pub(in crate::db) async fn read<T, F>(&self, f: F) -> Result<T, MttrlyError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, MttrlyError> + Send + 'static,
    {
        self.readers.read(f).await
    }

    /// Runs `f` with the writer connection on the blocking pool.
    pub(in crate::db) async fn call<T, F>(&self, f: F) -> Result<T, MttrlyError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, MttrlyError> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().unwrap_or_else(PoisonError::into_inner);
            f(&mut guard)
        })
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "database task panicked");
            MttrlyError::new(ErrorCode::InternalError, "internal database error")
        })?
    }

    /// Stores a notification in `account`'s war room, in one durable transaction with whatever
    /// else is being published at the same moment (group commit).
    pub(in crate::db) async fn publish(
        &self,
        account: mttrly_core::ids::AccountId,
        new: crate::db::warroom::NewNotification,
    ) -> group_commit::Published {
        self.publisher.publish(account, new).await
    }

    /// The journal writer's queue for audit rows.
    pub(in crate::db) fn journal(&self) -> JournalQueue {
        self.publisher.journal()
    }

    /// Runs `f` with the connection on the current thread: for the `init` command, which runs
    /// before any runtime exists.
    pub(in crate::db) fn call_blocking<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, MttrlyError>,
    ) -> Result<T, MttrlyError> {
        let mut guard = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut guard)
    }
}

/// Waits for another connection's write lock in short steps (SQLite's default handler sleeps up to
/// 100 ms at a time, which would add tens of milliseconds to a call that loses a race with a
/// checkpoint, or with another process that has the file open). Gives up
/// after about five seconds.
pub(in crate::db) fn busy_wait(attempt: i32) -> bool {
    if attempt >= 20_000 {
        return false;
    }
    std::thread::sleep(std::time::Duration::from_micros(250));
    true
}

/// Maps a SQLite error to `INTERNAL_ERROR`, logging the detail (which never reaches the caller).
/// Every account with the oldest time it keeps (`now` minus `retention_ms_for` its plan): what
/// each retention purge deletes below.
pub(in crate::db) fn retention_cutoffs(
    conn: &Connection,
    now: i64,
    retention_ms_for: impl Fn(Option<mttrly_core::Plan>) -> i64,
) -> Result<Vec<(String, i64)>, MttrlyError> {
    let accounts: Vec<(String, String)> = conn
        .prepare("SELECT id, plan FROM accounts")
        .and_then(|mut stmt| stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<_, _>>())
        .map_err(internal)?;
    Ok(accounts
        .into_iter()
        .map(|(account, plan)| {
            let cutoff = now.saturating_sub(retention_ms_for(plan.parse().ok()));
            (account, cutoff)
        })
        .collect())
}

#[allow(clippy::needless_pass_by_value)] // used as `map_err(internal)`
pub(in crate::db) fn internal(err: rusqlite::Error) -> MttrlyError {
    tracing::error!(error = %err, "database error");
    MttrlyError::new(ErrorCode::InternalError, "internal database error")
}

/// Makes the database file readable by its owner only (SQLite gives the `-wal` and `-shm` files
/// the database file's mode): it holds password hashes, sealed second factors and the audit log.
/// A new file is created 0600 before SQLite opens it, so there is no moment it is readable by
/// others; an existing one is tightened. Failures are logged, not fatal: the data directory itself
/// is 0700.
fn owner_only(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
        let result = match std::fs::metadata(path) {
            Ok(meta) if meta.permissions().mode() & 0o077 != 0 => {
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            }
            Ok(_) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map(drop)
            }
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            tracing::warn!(path = %path.display(), error = %e, "cannot make the database file private (0600)");
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}
