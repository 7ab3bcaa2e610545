//! A tenant's signed agent releases: what its admins published, one row per (target, version).
//! The signatures were checked before a row is written (`crate::releases::publish`); the bundle
//! is kept byte for byte so the agent can check them again.

use mttrly_core::MttrlyError;

use super::{Account, sqlite};

/// One stored release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseRow {
    /// Its target (`x86_64-linux`).
    pub target: String,
    /// Its version.
    pub version: String,
    /// SHA-256 of the binary, hex.
    pub sha256: String,
    /// The binary's size.
    pub size: u64,
    /// The oldest central it works with.
    pub min_central: String,
    /// When its manifest expires (ms).
    pub expires_at: i64,
    /// The key that signed the manifest.
    pub signing_key_id: String,
    /// The root that certified that key.
    pub root_key_id: String,
    /// The bundle's JSON, exactly as published.
    pub bundle_json: String,
    /// When it was published (ms).
    pub published_at: i64,
    /// Who published it.
    pub published_by: String,
}

/// What storing a release did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored {
    /// A new row, or the same version's signatures refreshed.
    Written,
    /// The very same bundle was already there.
    Unchanged,
    /// The version is already published with another binary.
    Conflict {
        /// The stored binary's SHA-256.
        sha256: String,
    },
}

/// A tenant's releases. Built by [`Account::releases`].
pub struct Releases<'a> {
    pub(super) account: Account<'a>,
}

impl Releases<'_> {
    /// Stores `row` unless its version is already published with another binary.
    pub async fn put(&self, row: ReleaseRow) -> Result<Stored, MttrlyError> {
        let account = self.account.id.clone();
        self.account.db.sqlite.call(move |conn| sqlite::releases::put(conn, &account, &row)).await
    }

    /// Every release, optionally for one target (unordered: versions sort in Rust).
    pub async fn list(&self, target: Option<String>) -> Result<Vec<ReleaseRow>, MttrlyError> {
        let account = self.account.id.clone();
        self.account.db.sqlite.read(move |conn| sqlite::releases::list(conn, &account, target.as_deref())).await
    }

    /// Whether any release of this account has a binary with this SHA-256.
    pub async fn has_binary(&self, sha256: &str) -> Result<bool, MttrlyError> {
        let (account, sha256) = (self.account.id.clone(), sha256.to_owned());
        self.account.db.sqlite.read(move |conn| sqlite::releases::has_binary(conn, &account, &sha256)).await
    }
}
