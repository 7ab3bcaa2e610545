//! Alerts: what the alert engine opens and resolves, and a tenant's view of them.

use std::collections::BTreeMap;

use mttrly_core::MttrlyError;
use mttrly_core::ids::{AccountId, AlertId, ServerId};
use mttrly_core::tools::common::Severity;
use mttrly_core::tools::servers::{Alert, AlertStatus, UnmatchedAlert};

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

    /// The account's unmatched alerts (monitoring alerts for no known host) matching `filter`'s
    /// severity, status, time and limit, newest first (its server is ignored: they have none).
    pub async fn list_unmatched(&self, filter: &AlertFilter) -> Result<Vec<UnmatchedAlert>, MttrlyError> {
        let (account, filter) = (self.account.id.clone(), filter.clone());
        self.account.db.sqlite.read(move |conn| sqlite::alerts::list_unmatched(conn, &account, &filter)).await
    }

    /// Applies one monitoring delivery's changes in order, in one transaction (a notification of
    /// many alerts is one write, not one per alert). Opening is idempotent: the partial unique
    /// indexes decide, so redeliveries and two deliveries racing each other open one alert. One
    /// result per change, in order.
    pub async fn apply_inbound(&self, changes: Vec<InboundChange>) -> Result<Vec<InboundApplied>, MttrlyError> {
        if changes.is_empty() {
            return Ok(Vec::new());
        }
        let account = self.account.id.clone();
        self.account.db.sqlite.call(move |conn| sqlite::alerts::apply_inbound(conn, &account, &changes)).await
    }
}

/// An alert from a monitoring system whose host matches no server of the account.
#[derive(Debug, Clone, PartialEq)]
pub struct NewUnmatchedAlert {
    /// Its id.
    pub id: AlertId,
    /// `alertmanager`, `grafana`, `pagerduty`.
    pub source: String,
    /// The source's key for it (Alertmanager's fingerprint, PagerDuty's incident id).
    pub fingerprint: String,
    /// Its name at the source.
    pub name: String,
    /// The host value the source named, if any.
    pub host: Option<String>,
    /// Severity.
    pub severity: Severity,
    /// What was observed.
    pub summary: String,
    /// The source's labels.
    pub labels: BTreeMap<String, String>,
    /// When (ms).
    pub opened_at: i64,
}

/// One change a monitoring delivery asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum InboundChange {
    /// Open this alert on its server unless the same (server, rule, subject) is open.
    Open(NewAlert),
    /// Keep this alert for no known server unless the same (source, fingerprint) is open.
    OpenUnmatched(NewUnmatchedAlert),
    /// Resolve whatever is open under this key at `at` (ms): matched alerts by rule and subject,
    /// unmatched ones by source and subject (a "resolved" names the alert, not our id or server).
    Resolve {
        /// The source.
        source: String,
        /// The rule of matched alerts (`<source>:<name>`).
        rule: String,
        /// The subject / fingerprint.
        subject: String,
        /// When (ms).
        at: i64,
    },
}

/// What one [`InboundChange`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum InboundApplied {
    /// Whether the alert was opened (false: the same one was already open).
    Opened(bool),
    /// The alerts resolved, with their server (none for unmatched ones).
    Resolved(Vec<(AlertId, Option<ServerId>)>),
}
