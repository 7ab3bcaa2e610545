//! The SQLite database: opening, migrations, and running queries off the async runtime.
//!
//! One file in WAL mode. Queries are plain functions over `&Connection` (in the sibling modules);
//! [`Db::call`] runs them on tokio's blocking pool so no SQLite work ever blocks a runtime worker.
//! Every query that touches tenant data takes the account id and filters on it.

pub mod accounts;
pub mod actions;
pub mod alerts;
pub mod audit;
mod migrations;
pub mod oauth;
pub mod reality;
pub mod servers;

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use mttrly_core::{ErrorCode, MttrlyError};
use rusqlite::Connection;

/// Why the database could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// SQLite refused the file.
    #[error("cannot open database {path}")]
    Sqlite {
        /// The file.
        path: String,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// The file was written by a newer mttrly.
    #[error(
        "database {path} has schema version {found}, newer than this mttrly-central understands ({supported}); \
         upgrade mttrly-central or restore a backup"
    )]
    TooNew {
        /// The file.
        path: String,
        /// Its schema version.
        found: usize,
        /// The newest this binary knows.
        supported: usize,
    },
    /// A migration failed.
    #[error("cannot migrate database {path}")]
    Migration {
        /// The file.
        path: String,
        /// What failed.
        #[source]
        source: rusqlite_migration::Error,
    },
}

/// A handle to the database, cheap to clone.
#[derive(Clone)]
pub struct Db {
    conn: Arc<Mutex<Connection>>,
}

impl Db {
    /// Opens (creating if needed) and migrates the database at `path`. Refuses a database from a
    /// newer version instead of guessing.
    pub fn open(path: &Path) -> Result<Self, OpenError> {
        let display = path.display().to_string();
        let sqlite = |source| OpenError::Sqlite { path: display.clone(), source };
        let mut conn = Connection::open(path).map_err(sqlite)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(sqlite)?;
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(sqlite)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(sqlite)?;
        conn.busy_handler(Some(busy_wait)).map_err(sqlite)?;
        migrations::apply(&mut conn, &display)?;
        Ok(Self { conn: Arc::new(Mutex::new(conn)) })
    }

    /// Runs `f` with the connection on the blocking pool.
    pub async fn call<T, F>(&self, f: F) -> Result<T, MttrlyError>
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

    /// Runs `f` with the connection on the current thread. For startup code and tests only.
    pub fn call_blocking<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, MttrlyError>,
    ) -> Result<T, MttrlyError> {
        let mut guard = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut guard)
    }
}

/// Waits for another connection's write lock in short steps (SQLite's default handler sleeps up to
/// 100 ms at a time, which would add tens of milliseconds to a call that loses a race with the
/// audit writer's commit). Gives up after about five seconds.
pub fn busy_wait(attempt: i32) -> bool {
    if attempt >= 20_000 {
        return false;
    }
    std::thread::sleep(std::time::Duration::from_micros(250));
    true
}

/// Maps a SQLite error to `INTERNAL_ERROR`, logging the detail (which never reaches the caller).
#[allow(clippy::needless_pass_by_value)] // used as `map_err(internal)`
pub fn internal(err: rusqlite::Error) -> MttrlyError {
    tracing::error!(error = %err, "database error");
    MttrlyError::new(ErrorCode::InternalError, "internal database error")
}

/// Milliseconds since the Unix epoch, the time format of every column.
pub fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// Converts a stored time back to a timestamp.
pub fn timestamp(ms: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_millisecond(ms).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
}
