//! Deploys and deploy verifications of a tenant.
//!
//! A deploy is keyed by its sender's id (`external_id`, unique per account): recording the same id
//! again is the same deploy. What a later report may change is its progress (status forward only,
//! finish time, link, and details first left out); what it may not change is which server,
//! service and version it was, so a reused CI id never silently rewrites history.

use mttrly_core::MttrlyError;
use mttrly_core::ids::{DeployId, ServerId, VerificationId};
use mttrly_core::tools::deploys::{AlertSinceDeploy, DeployRecord, DeploySource, DeployStatus, Verdict};

use super::{Account, sqlite};

/// A deploy to record (already validated and redacted).
#[derive(Debug, Clone)]
pub struct NewDeploy {
    /// The id a new row gets.
    pub id: DeployId,
    /// The server.
    pub server_id: ServerId,
    /// The sender's id.
    pub external_id: String,
    /// The service.
    pub service: String,
    /// The version.
    pub version: String,
    /// The commit.
    pub commit_sha: Option<String>,
    /// The repository.
    pub repo_url: Option<String>,
    /// The environment name.
    pub environment: Option<String>,
    /// When it began, ms.
    pub started_at: i64,
    /// When it ended, ms.
    pub finished_at: Option<i64>,
    /// Its status.
    pub status: DeployStatus,
    /// Who reported it.
    pub source: DeploySource,
    /// A link.
    pub url: Option<String>,
}

/// What recording did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// A new deploy.
    Created(DeployRecord),
    /// An existing deploy moved on (status, finish time, link or details); `from` is its status before.
    Updated {
        /// The status before.
        from: DeployStatus,
        /// The row now.
        row: DeployRecord,
    },
    /// The same report again, or an older one arriving late (a status never moves backwards):
    /// nothing changed.
    Unchanged(DeployRecord),
}

impl Recorded {
    /// The row as it is now.
    pub fn row(&self) -> &DeployRecord {
        match self {
            Self::Created(row) | Self::Unchanged(row) | Self::Updated { row, .. } => row,
        }
    }
}

/// A filter for listing deploys.
#[derive(Debug, Clone, Default)]
pub struct DeployFilter {
    /// One server.
    pub server_id: Option<ServerId>,
    /// One service.
    pub service: Option<String>,
    /// The most rows (newest first).
    pub limit: u32,
}

/// A stored verification run.
#[derive(Debug, Clone)]
pub struct NewVerification {
    /// Its id.
    pub id: VerificationId,
    /// The server.
    pub server_id: ServerId,
    /// The deploy verified.
    pub deploy_id: Option<DeployId>,
    /// The service.
    pub service: Option<String>,
    /// The verdict.
    pub verdict: Verdict,
    /// The whole verification as JSON (what the tool returned).
    pub evidence_json: String,
    /// When it ran, ms.
    pub checked_at: i64,
}

/// A tenant's deploys. Built by [`Account::deploys`].
pub struct Deploys<'a> {
    pub(super) account: Account<'a>,
}

impl Deploys<'_> {
    /// Records a deploy or a later report of it, in one transaction.
    ///
    /// # Errors
    /// `VALIDATION_ERROR` when the id already names a deploy of another server, service or version.
    pub async fn record(&self, deploy: NewDeploy, now: i64) -> Result<Recorded, MttrlyError> {
        let account = self.account.id.clone();
        self.account.db.sqlite.call(move |conn| sqlite::deploys::record(conn, &account, &deploy, now)).await
    }

    /// Deploys, newest start first.
    pub async fn list(&self, filter: DeployFilter) -> Result<Vec<DeployRecord>, MttrlyError> {
        let account = self.account.id.clone();
        self.account.db.sqlite.read(move |conn| sqlite::deploys::list(conn, &account, &filter)).await
    }

    /// One deploy by id (`None` for another tenant's).
    pub async fn get(&self, id: &DeployId) -> Result<Option<DeployRecord>, MttrlyError> {
        let (account, id) = (self.account.id.clone(), id.clone());
        self.account.db.sqlite.read(move |conn| sqlite::deploys::get(conn, &account, &id)).await
    }

    /// Alerts on `server` opened at or after `since` (ms), oldest first, at most 100.
    pub async fn alerts_since(&self, server: &ServerId, since: i64) -> Result<Vec<AlertSinceDeploy>, MttrlyError> {
        let (account, server) = (self.account.id.clone(), server.clone());
        self.account.db.sqlite.read(move |conn| sqlite::deploys::alerts_since(conn, &account, &server, since)).await
    }

    /// Stores one verification run.
    pub async fn add_verification(&self, run: NewVerification) -> Result<(), MttrlyError> {
        let account = self.account.id.clone();
        self.account.db.sqlite.call(move |conn| sqlite::deploys::add_verification(conn, &account, &run)).await
    }

    /// The latest verification of `server` (of `deploy` when given): its stored JSON.
    pub async fn latest_verification(
        &self,
        server: &ServerId,
        deploy: Option<&DeployId>,
    ) -> Result<Option<String>, MttrlyError> {
        let (account, server, deploy) = (self.account.id.clone(), server.clone(), deploy.cloned());
        self.account
            .db
            .sqlite
            .read(move |conn| sqlite::deploys::latest_verification(conn, &account, &server, deploy.as_ref()))
            .await
    }
}
