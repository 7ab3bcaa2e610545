//! The tests' escape hatch, compiled only with the `test-support` feature (enabled by the
//! workspace's test crates through their dev-dependencies, never by a normal build).
//!
//! Some tests must put the database in states no operation produces (an action whose expiry
//! has passed, one a crash left `running`, a revoked token, an expired install token); they do it
//! with raw SQL here, deliberately and visibly, instead of through a public connection.

use mttrly_core::MttrlyError;

use super::Db;

impl Db {
    /// Runs `f` with the SQLite connection on the blocking pool. Tests only: production code
    /// reaches the database through the named operations.
    pub async fn with_connection_for_tests<T, F>(&self, f: F) -> Result<T, MttrlyError>
    where
        T: Send + 'static,
        F: FnOnce(&mut rusqlite::Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        self.sqlite.call(move |conn| f(conn).map_err(super::internal)).await
    }
}
