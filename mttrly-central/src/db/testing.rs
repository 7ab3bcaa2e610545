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
        self.sqlite.call(move |conn| f(conn).map_err(super::sqlite::internal)).await
    }

    /// Registers a server named `name` in `account` straight in the registry, for the unit tests
    /// of modules that need a server row but no `Central` (the app's `servers::add` holds the
    /// rules; this skips them deliberately).
    pub async fn server_for_tests(
        &self,
        account: &mttrly_core::ids::AccountId,
        name: &str,
        environment: mttrly_core::Environment,
        install_hash: &[u8; 32],
    ) -> Result<mttrly_core::ids::ServerId, MttrlyError> {
        match self.account(account).servers().register(name, environment, install_hash, i64::MAX, u32::MAX).await? {
            super::servers::Registered::Added(id) => Ok(id),
            super::servers::Registered::AtLimit { .. } => {
                Err(MttrlyError::new(mttrly_core::ErrorCode::InternalError, "the test server was not added"))
            }
        }
    }
}
