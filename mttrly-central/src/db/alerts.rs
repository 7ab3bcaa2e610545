//! Alerts: what the alert engine opens and resolves, and a tenant's view of them.

use mttrly_core::MttrlyError;
use mttrly_core::ids::{AccountId, AlertId, ServerId};
use mttrly_core::tools::common::Severity;
use mttrly_core::tools::servers::{Alert, AlertStatus};

use super::{Account, sqlite};

/// A newly opened alert.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAlert {
    /// Its id (chosen by the alert engine, so it can resolve the alert before the row is written).
    pub id: AlertId,
    /// The tenant.
    pub account_id: AccountId,
    /// The server.
    pub server_id: ServerId,
    /// The rule id.
    pub rule: String,
    /// What the rule looked at (a mount point, `cpu`, ...), so one rule can hold several alerts.
    pub subject: String,
    /// Severity.
    pub severity: Severity,
    /// What was observed.
    pub summary: String,
    /// When (ms).
    pub opened_at: i64,
}

/// A decision to write.
#[derive(Debug, Clone, PartialEq)]
pub enum AlertChange {
    /// Open this alert.
    Open(NewAlert),
    /// Resolve this alert at this time (ms).
    Resolve(AlertId, i64),
}

/// Filters for [`Alerts::list`].
#[derive(Debug, Clone, Default)]
pub struct AlertFilter {
    /// Only this server.
    pub server_id: Option<ServerId>,
    /// Only this severity.
    pub severity: Option<Severity>,
    /// Only this status.
    pub status: Option<AlertStatus>,
    /// Only alerts opened at or after this time (ms): the plan's retention.
    pub since: i64,
    /// At most this many.
    pub limit: u32,
}

/// A tenant's alerts. Built by [`Account::alerts`]; the engine's writes go through
/// [`super::servers::Fleet::apply_alert_changes`].
pub struct Alerts<'a> {
    pub(super) account: Account<'a>,
}

impl Alerts<'_> {
    /// The account's alerts matching `filter`, newest first.
    pub async fn list(&self, filter: &AlertFilter) -> Result<Vec<Alert>, MttrlyError> {
        let (account, filter) = (self.account.id.clone(), filter.clone());
        self.account.db.sqlite.read(move |conn| sqlite::alerts::list(conn, &account, &filter)).await
    }

    /// Opens an alert from a monitoring system unless the same (server, rule, subject) is already
    /// open, so a redelivered notification opens nothing. Returns whether it was opened.
    pub async fn open_if_new(&self, alert: NewAlert) -> Result<bool, MttrlyError> {
        self.account.db.sqlite.call(move |conn| sqlite::alerts::open_if_new(conn, &alert)).await
    }

    /// Resolves the account's open alerts with this rule and subject at `at` (ms): a monitoring
    /// system's "resolved" names the alert, not our id. Returns `(alert, server)` per resolved one.
    pub async fn resolve_matching(
        &self,
        rule: &str,
        subject: &str,
        at: i64,
    ) -> Result<Vec<(AlertId, ServerId)>, MttrlyError> {
        let (account, rule, subject) = (self.account.id.clone(), rule.to_owned(), subject.to_owned());
        self.account
            .db
            .sqlite
            .call(move |conn| sqlite::alerts::resolve_matching(conn, &account, &rule, &subject, at))
            .await
    }
}
