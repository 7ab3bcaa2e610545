//! The server registry, install tokens and agent credentials.

use std::collections::HashMap;

use mttrly_core::capability::CapabilitySet;
use mttrly_core::ids::{AccountId, AlertId, ServerId};
use mttrly_core::{Environment, MttrlyError};

use super::alerts::AlertChange;
use super::{Account, Db, sqlite};

/// A server as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerRow {
    /// Its id.
    pub id: ServerId,
    /// Its tenant.
    pub account_id: AccountId,
    /// Its name.
    pub name: String,
    /// Its environment.
    pub environment: Environment,
    /// When it was registered (ms).
    pub created_at: i64,
    /// What its agent said in `Hello`.
    pub host: Option<HostRow>,
    /// The last heartbeat (ms), as last flushed.
    pub last_seen_at: Option<i64>,
    /// The last metrics (JSON of `mttrly_core::tools::common::HostMetrics`), as last flushed.
    pub metrics_json: Option<String>,
}

/// A server as the servers page lists it before paging: enough to count, filter and order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerBrief {
    /// Its id.
    pub id: ServerId,
    /// Its name.
    pub name: String,
    /// Its environment.
    pub environment: Environment,
}

/// What an agent reported about its host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRow {
    /// Host name.
    pub hostname: String,
    /// OS name and version.
    pub os: String,
    /// Kernel release.
    pub kernel: String,
    /// CPU architecture.
    pub arch: String,
    /// Agent version.
    pub agent_version: String,
    /// The capabilities the agent announced (stored comma-separated; names this central does not
    /// know were already left out at the boundary).
    pub capabilities: CapabilitySet,
    /// The local policy summary, JSON.
    pub policy_json: String,
}

/// What registering a server did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Registered {
    /// Registered, with its install token stored.
    Added(ServerId),
    /// Refused: the account already has `count` live servers, at or over the limit.
    AtLimit {
        /// The account's live servers.
        count: u32,
    },
}

/// A tenant's servers. Built by [`Account::servers`].
pub struct Servers<'a> {
    pub(super) account: Account<'a>,
}

impl Servers<'_> {
    /// How many live (not decommissioned) servers the account has.
    pub async fn count_live(&self) -> Result<u32, MttrlyError> {
        let account = self.account.id.clone();
        self.account.db.sqlite.read(move |conn| sqlite::servers::count_live(conn, &account)).await
    }

    /// The account's live servers, by name.
    pub async fn list(&self) -> Result<Vec<ServerRow>, MttrlyError> {
        let account = self.account.id.clone();
        self.account.db.sqlite.read(move |conn| sqlite::servers::list(conn, &account)).await
    }

    /// The account's live servers in brief (id, name, environment), by name: what the servers
    /// page counts, filters and pages through before it reads the full rows of one page.
    pub async fn briefs(&self) -> Result<Vec<ServerBrief>, MttrlyError> {
        let account = self.account.id.clone();
        self.account.db.sqlite.read(move |conn| sqlite::servers::briefs(conn, &account)).await
    }

    /// The account's live servers among `ids`, in the order of `ids` (unknown ones and another
    /// account's left out).
    pub async fn get_many(&self, ids: Vec<ServerId>) -> Result<Vec<ServerRow>, MttrlyError> {
        let account = self.account.id.clone();
        self.account.db.sqlite.read(move |conn| sqlite::servers::get_many(conn, &account, &ids)).await
    }

    /// How many open alerts each of the account's servers has (servers with none left out), in
    /// one grouped query.
    pub async fn open_alert_counts(&self) -> Result<HashMap<ServerId, u32>, MttrlyError> {
        let account = self.account.id.clone();
        self.account.db.sqlite.read(move |conn| sqlite::servers::open_alert_counts(conn, &account)).await
    }

    /// A live server of the account, or `None` (also for another account's server).
    pub async fn get(&self, id: &ServerId) -> Result<Option<ServerRow>, MttrlyError> {
        let (account, id) = (self.account.id.clone(), id.clone());
        self.account.db.sqlite.read(move |conn| sqlite::servers::get(conn, &account, &id)).await
    }

    /// Registers a server and stores its install token's hash, unless the account already has
    /// `limit` live servers; the count and the inserts are one transaction, so two racing
    /// registrations cannot both take the last slot. A name already used by a live server of the
    /// account is `VALIDATION_ERROR`.
    pub async fn register(
        &self,
        name: &str,
        environment: Environment,
        install_hash: &[u8; 32],
        expires_at: i64,
        limit: u32,
    ) -> Result<Registered, MttrlyError> {
        let (account, name, hash) = (self.account.id.clone(), name.to_owned(), *install_hash);
        self.account
            .db
            .sqlite
            .call(move |conn| sqlite::servers::register(conn, &account, &name, environment, &hash, expires_at, limit))
            .await
    }

    /// Marks a live server decommissioned and revokes its credentials and unused install tokens;
    /// `false` if the account has no such live server.
    pub async fn decommission(&self, id: &ServerId) -> Result<bool, MttrlyError> {
        let (account, id) = (self.account.id.clone(), id.clone());
        self.account.db.sqlite.call(move |conn| sqlite::servers::decommission(conn, &account, &id)).await
    }

    /// Revokes the server's credentials and pending install tokens and stores a new install
    /// token, in one transaction: the old agent stops working at once, the history is kept.
    /// `false` (nothing written) if the server is not the account's.
    pub async fn rotate_credentials(
        &self,
        id: &ServerId,
        new_token_hash: &[u8; 32],
        expires_at: i64,
    ) -> Result<bool, MttrlyError> {
        let (account, id, hash) = (self.account.id.clone(), id.clone(), *new_token_hash);
        self.account
            .db
            .sqlite
            .call(move |conn| sqlite::servers::rotate_credentials(conn, &account, &id, &hash, expires_at))
            .await
    }
}

/// Non-tenant: what agents and the fleet-wide writers do, keyed by a server the caller has
/// already authenticated (an install token, an agent session) or across every account (the
/// start-up seed, the heartbeat flush, the alert writer). Built by [`Db::fleet`].
pub struct Fleet<'a> {
    pub(super) db: &'a Db,
}

impl Fleet<'_> {
    /// Trades an install token's hash for agent credentials in one transaction: the token is
    /// marked used, older credentials of its server revoked, the new secret's hash stored.
    /// Unknown, used and expired tokens are all `AUTH_FAILED`, each with its own message.
    pub async fn enroll(
        &self,
        token_hash: &[u8; 32],
        secret_hash: &[u8; 32],
        now: i64,
    ) -> Result<(ServerId, AccountId), MttrlyError> {
        let (token, secret) = (*token_hash, *secret_hash);
        self.db.sqlite.call(move |conn| sqlite::servers::enroll(conn, &token, &secret, now)).await
    }

    /// Records what a (authenticated) server's agent said in `Hello`.
    pub async fn record_hello(&self, server: &ServerId, host: HostRow, now: i64) -> Result<(), MttrlyError> {
        let server = server.clone();
        self.db.sqlite.call(move |conn| sqlite::servers::record_hello(conn, &server, &host, now)).await
    }

    /// Writes a batch of heartbeats (server, last seen in ms, latest metrics JSON) in one
    /// transaction; with `sample_at` (ms), the same transaction then appends a metrics sample
    /// for every live server heard from in the minute before it ([`super::metrics`]).
    pub async fn flush_heartbeats(
        &self,
        batch: Vec<(ServerId, i64, String)>,
        sample_at: Option<i64>,
    ) -> Result<(), MttrlyError> {
        self.db.sqlite.call(move |conn| sqlite::servers::flush_heartbeats(conn, &batch, sample_at)).await
    }

    /// Every live server of every account and every open alert (server, rule, subject, id): what
    /// the live registry and the alert engine start from.
    pub async fn seed(&self) -> Result<(Vec<ServerRow>, Vec<(ServerId, String, String, AlertId)>), MttrlyError> {
        self.db.sqlite.call(|conn| Ok((sqlite::servers::all_live(conn)?, sqlite::alerts::all_open(conn)?))).await
    }

    /// Applies the alert engine's changes (each carrying its account) in order, in one
    /// transaction.
    pub async fn apply_alert_changes(&self, changes: Vec<AlertChange>) -> Result<(), MttrlyError> {
        self.db.sqlite.call(move |conn| sqlite::alerts::apply(conn, &changes)).await
    }
}
