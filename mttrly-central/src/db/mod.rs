//! The storage seam: central's data as named async operations, never a connection.
//!
//! Callers see domain types (rows, filters, outcomes) and async methods; no SQL, no `rusqlite`
//! type, no SQLite dialect crosses this module. The operations come in two kinds of handle:
//!
//! - **Tenant data** (servers, actions and decisions, alerts, audit rows, reality snapshots, users
//!   and tokens of an account) is reached only through [`Db::account`], which binds the account
//!   id: `db.account(&caller.account_id).actions().get(&id)`. Every query behind such a handle
//!   filters on that account, so a handler cannot ask for tenant data without naming whose it is
//!   (`tests/layers.rs` checks that tool handlers and the gRPC API's services, the agent service
//!   aside, reach the database only this way).
//! - **Operations with no tenant yet, or across all tenants**, each on its own named handle:
//!   [`Db::credentials`] (a secret → its owner: the lookups that *find* the tenant),
//!   [`Db::oauth`] (clients, codes and tokens of the authorization server),
//!   [`Db::device_logins`] (`mttrly-cli login`'s device codes, tenantless until a person approves),
//!   [`Db::oidc_logins`] (browsers' pending single sign-ons, single-use) and [`Db::account_named`],
//!   [`Db::fleet`] (agent enrollment, hellos, heartbeat flushes, the alert writer and the start-up
//!   seed: keyed by a server the caller already authenticated), [`Db::maintenance`] (expiry and
//!   retention sweeps, crash recovery), and on `Db` itself [`Db::open`], [`Db::init`],
//!   [`Db::create_tenant`] and [`Db::first_account`].
//!
//! Multi-step transactions are single operations here (action create with the pending cap,
//! approve, reject, OAuth token pair, init, alert changes, server registration within the plan's
//! limit), never composed by callers.
//!
//! Tests that need a state no operation produces (an expired action, a revoked token) use
//! `Db::with_connection_for_tests`, compiled only with the `test-support` feature, which only the
//! workspace's dev-dependencies enable.
//!
//! ## Backends
//!
//! Today the only backend is SQLite, in `sqlite/`: its connection, its migrations
//! (`sqlite/migrations.rs`) and the SQL of every operation, one module per domain mirroring the
//! handle modules here. PostgreSQL plugs in beside it, without touching a caller:
//!
//! 1. `db/postgres/` with the same module set (`accounts.rs`, `actions.rs`, ...), each function the
//!    twin of its SQLite one (same arguments, same domain types, its own dialect), and its own
//!    `postgres/migrations/` (schemas are per backend; both append-only).
//! 2. [`Db`] holds an `enum Backend { Sqlite(Sqlite), Postgres(Postgres) }` in place of its
//!    `sqlite` field, chosen by [`Db::open`] from the configured URL. Each handle method, today
//!    `self.db.sqlite.call(move |conn| sqlite::<domain>::<op>(conn, ..))` (or `.read(..)` for a
//!    read-only operation, which SQLite serves from its reader threads), matches on it and calls
//!    its twin; the methods' signatures and the domain types stay, so no caller changes.
//! 3. The transactions named above become one PostgreSQL transaction each (`SERIALIZABLE`, or
//!    `SELECT ... FOR UPDATE` on the counted rows, where SQLite relies on IMMEDIATE).
//!
//! The audit log's appends and the war room's publishes are written by one journal writer
//! (`sqlite/group_commit.rs`): a thread on the writer connection that batches both streams into
//! one `synchronous = FULL` transaction per batch and keeps the hash chains' heads in memory: a
//! tool call's audit row costs its caller nothing but a queue send, and a burst of rows and
//! publishes costs one `fsync`. Other writes on the connection wait for a batch's commit as they
//! would for SQLite's write lock. `crate::audit::writer` reaches it through
//! [`audit::AuditAppender`]. A PostgreSQL backend gives it a connection of its own.

pub mod accounts;
pub mod actions;
pub mod alerts;
pub mod audit;
pub mod chat;
pub mod deploys;
pub mod device;
pub mod investigations;
pub mod knowledge;
pub mod metrics;
pub mod oauth;
pub mod oidc;
pub mod people;
pub mod proactive;
pub mod reality;
pub mod releases;
pub mod servers;
mod sqlite;
pub mod tenants;
#[cfg(any(test, feature = "test-support"))]
mod testing;
#[cfg(test)]
mod tests;
pub mod timeline;
pub mod warroom;

use std::path::Path;

use mttrly_core::ids::{AccountId, UserId};
use mttrly_core::{MttrlyError, Plan};

/// An error from a storage backend, boxed so that no backend's error type crosses the seam.
pub type BackendError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why the database could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The backend refused the database.
    #[error("cannot open database {path}")]
    Storage {
        /// The file.
        path: String,
        /// What the backend said.
        #[source]
        source: BackendError,
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
        source: BackendError,
    },
}

impl OpenError {
    /// A backend refusal for `path`.
    pub fn storage(path: &Path, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Storage { path: path.display().to_string(), source: Box::new(source) }
    }
}

/// A handle to the database, cheap to clone.
#[derive(Clone)]
pub struct Db {
    sqlite: sqlite::Sqlite,
}

impl Db {
    /// Opens (creating if needed) and migrates the database at `path`. Refuses a database from a
    /// newer version instead of guessing.
    pub fn open(path: &Path) -> Result<Self, OpenError> {
        Ok(Self { sqlite: sqlite::Sqlite::open(path)? })
    }

    /// The data of one tenant. Every operation behind it is scoped to `account`.
    pub fn account<'a>(&'a self, account: &'a AccountId) -> Account<'a> {
        Account { db: self, id: account }
    }

    /// Non-tenant: the lookups that turn a presented secret into its owner.
    pub fn credentials(&self) -> accounts::Credentials<'_> {
        accounts::Credentials { db: self }
    }

    /// Non-tenant: what a browser presents (a session cookie, an invite link, a name on the
    /// sign-in page) → its tenant and person. Only `crate::signin` and `crate::second_factor` call it.
    pub fn signins(&self) -> people::SignIns<'_> {
        people::SignIns { db: self }
    }

    /// Non-tenant: what a chat service presents (a link code, a tap, a chat user id), turned into
    /// the tenant and person it belongs to.
    pub fn chat_lookups(&self) -> chat::ChatLookups<'_> {
        chat::ChatLookups { db: self }
    }

    /// Non-tenant: the OAuth authorization server's clients, codes and tokens.
    pub fn oauth(&self) -> oauth::OAuth<'_> {
        oauth::OAuth { db: self }
    }

    /// Non-tenant: `mttrly-cli login`'s device logins, which have no account until a human
    /// approves one.
    pub fn device_logins(&self) -> device::DeviceLogins<'_> {
        device::DeviceLogins { db: self }
    }

    /// Non-tenant: the accounts themselves, for `mttrly-central accounts create | list`.
    pub fn tenants(&self) -> tenants::Tenants<'_> {
        tenants::Tenants { db: self }
    }

    /// Non-tenant: agents and the fleet-wide writers, keyed by a server already authenticated.
    pub fn fleet(&self) -> servers::Fleet<'_> {
        servers::Fleet { db: self }
    }

    /// Non-tenant: sweeps across every account (expiry, retention, crash recovery).
    pub fn maintenance(&self) -> Maintenance<'_> {
        Maintenance { db: self }
    }

    /// Non-tenant: creates the first tenant and its admin in one transaction, unless an account
    /// exists (then `None`, nothing written). Blocking: `init` runs before any runtime exists.
    pub fn init(
        &self,
        name: &str,
        plan: Plan,
        admin_name: &str,
        token_hash: &[u8; 32],
    ) -> Result<Option<(AccountId, UserId)>, MttrlyError> {
        self.sqlite.call_blocking(|conn| sqlite::accounts::init(conn, name, plan, admin_name, token_hash))
    }

    /// Non-tenant, blocking (quickstart mints its tokens before the server starts, like `init`):
    /// stores an API token of the first account's first admin, reaching every tool (an assistant
    /// token when `assistant` names it). `INTERNAL_ERROR` when `init` has not run.
    pub fn insert_first_admin_token(&self, hash: &[u8; 32], assistant: Option<&str>) -> Result<(), MttrlyError> {
        self.sqlite.call_blocking(|conn| sqlite::accounts::insert_first_admin_token(conn, hash, assistant))
    }

    /// Non-tenant: creates another tenant with its first admin, whose token hash is `token_hash`.
    pub async fn create_tenant(
        &self,
        name: &str,
        plan: Plan,
        admin_name: &str,
        token_hash: &[u8; 32],
    ) -> Result<(AccountId, UserId), MttrlyError> {
        let (name, admin, hash) = (name.to_owned(), admin_name.to_owned(), *token_hash);
        self.sqlite.call(move |conn| sqlite::accounts::create_tenant(conn, &name, plan, &admin, &hash)).await
    }

    /// Non-tenant: the first account (by creation) and its plan, if `init` has run.
    pub async fn first_account(&self) -> Result<Option<(AccountId, Plan)>, MttrlyError> {
        self.sqlite.read(sqlite::accounts::first_account).await
    }
}

/// One tenant's data: the only way to reach it. Built by [`Db::account`].
#[derive(Clone, Copy)]
pub struct Account<'a> {
    db: &'a Db,
    id: &'a AccountId,
}

impl<'a> Account<'a> {
    /// Its servers.
    pub fn servers(self) -> servers::Servers<'a> {
        servers::Servers { account: self }
    }

    /// Its actions and the decisions on them.
    pub fn actions(self) -> actions::Actions<'a> {
        actions::Actions { account: self }
    }

    /// Its alerts.
    pub fn alerts(self) -> alerts::Alerts<'a> {
        alerts::Alerts { account: self }
    }

    /// Its audit log (reads; writes go through `crate::audit`).
    pub fn audit(self) -> audit::Audit<'a> {
        audit::Audit { account: self }
    }

    /// Its servers' latest service-reality snapshots.
    pub fn reality(self) -> reality::Reality<'a> {
        reality::Reality { account: self }
    }

    /// Its users and API tokens.
    pub fn users(self) -> accounts::Users<'a> {
        accounts::Users { account: self }
    }

    /// Its deploys and deploy verifications.
    pub fn deploys(self) -> deploys::Deploys<'a> {
        deploys::Deploys { account: self }
    }

    /// Its people's chat links and the approval messages sent to them.
    pub fn chat(self) -> chat::Chat<'a> {
        chat::Chat { account: self }
    }

    /// Its people's sign-in data: credentials, second factors, invites, browser sessions.
    pub fn people(self) -> people::People<'a> {
        people::People { account: self }
    }

    /// Proactive events, their budgets and the users' brief cursors.
    pub fn proactive(self) -> proactive::Proactive<'a> {
        proactive::Proactive { account: self }
    }

    /// Its knowledge base: postmortems, recipes, notes and their full-text index.
    pub fn knowledge(self) -> knowledge::Knowledge<'a> {
        knowledge::Knowledge { account: self }
    }

    /// Its war room: channels and notifications.
    pub fn warroom(self) -> warroom::WarRoom<'a> {
        warroom::WarRoom { account: self }
    }

    /// Its signed agent releases.
    pub fn releases(self) -> releases::Releases<'a> {
        releases::Releases { account: self }
    }

    /// Its servers' merged timelines (alerts, deploys, investigations, actions, audit rows).
    pub fn timeline(self) -> timeline::Timeline<'a> {
        timeline::Timeline { account: self }
    }

    /// Its plan (`None` if the account is gone or its plan unknown to this build).
    pub async fn plan(self) -> Result<Option<Plan>, MttrlyError> {
        let account = self.id.clone();
        self.db.sqlite.read(move |conn| sqlite::accounts::plan(conn, &account)).await
    }
}

/// Sweeps across every account. Built by [`Db::maintenance`].
pub struct Maintenance<'a> {
    db: &'a Db,
}

impl Maintenance<'_> {
    /// Expires every pending action past its expiry at `now` (ms); returns them.
    pub async fn expire_due_actions(&self, now: i64) -> Result<Vec<actions::ActionRow>, MttrlyError> {
        self.db.sqlite.call(move |conn| sqlite::actions::expire_due(conn, now)).await
    }

    /// After a crash: actions left `approved` or `running` become `failed` with `result`, never
    /// re-sent. Returns them.
    pub async fn fail_interrupted_actions(
        &self,
        now: i64,
        result: mttrly_core::tools::actions::ExecutionResult,
    ) -> Result<Vec<actions::ActionRow>, MttrlyError> {
        self.db.sqlite.call(move |conn| sqlite::actions::fail_interrupted(conn, now, &result)).await
    }

    /// Deletes resolved alerts and audit rows older than each account's retention, which
    /// `retention_ms_for` gives from the account's plan. Returns how many rows went.
    pub async fn purge(
        &self,
        now: i64,
        retention_ms_for: impl Fn(Option<Plan>) -> i64 + Send + 'static,
    ) -> Result<usize, MttrlyError> {
        self.db.sqlite.call(move |conn| sqlite::alerts::purge(conn, now, retention_ms_for)).await
    }
}

/// Milliseconds since the Unix epoch, the time format of every column.
pub fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// Converts a stored time back to a timestamp.
pub fn timestamp(ms: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_millisecond(ms).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
}
