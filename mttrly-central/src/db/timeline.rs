//! One server's timeline, read from the tables that record what happened to it: alerts,
//! deploys, investigations, actions and the audit log.
//!
//! **What one item is.** One happening at one time, recorded once:
//! - an alert gives two items, its opening and its resolution; the audit log's `alert` rows are
//!   copies of those two and are left out;
//! - a deploy gives its start and its finish; an investigation its opening and its close (the
//!   audit row written when it opened, whose subject is its id, is the same opening and is left
//!   out; a close's row is a person's or the sweep's act and stays);
//! - an action gives one item, its request (with its status now and when it finished); the audit
//!   rows that record the same request are left out: the row whose subject is the action id
//!   written when it was created, and the successful call of a tool that always creates an action
//!   (the calls of [`ACTION_TOOLS`]). Its decisions and its result are later happenings and stay,
//!   as audit items about the action;
//! - every other audit row about the server is an item (tool calls, failed or refused calls,
//!   agent events, API calls);
//! - thread posts are not a server's records: never read here (a retrospective written from a
//!   thread adds them from the war room).
//!
//! Each kind of item is read with its own indexed query, newest first, from the cursor on; the
//! handle merges them into one order (see `mttrly_core::tools::timeline`).

use mttrly_core::MttrlyError;
use mttrly_core::ids::ServerId;
use mttrly_core::tools::timeline::{TimelineEvent, TimelineItem, TimelineKey};

use super::{Account, sqlite};

/// Tools whose successful call always creates exactly one action (`actions::submit`): the
/// action's own item stands for the call.
pub const ACTION_TOOLS: [&str; 7] = [
    "mttrly_execute_command",
    "mttrly_execute_script",
    "mttrly_write_file",
    "mttrly_cleanup_file",
    "mttrly_run_playbook",
    "mttrly_regenerate_install_token",
    "mttrly_decommission_server",
];

/// The audit subject of a deploy verifier run (`deploys::verify`). Its timeline item's status is
/// the run's verdict (its parameters' `verdict`), not the call's `ok`.
pub const VERIFIER_RUN: &str = "deploy.verified";

/// A verifier run: (id, deploy id, verdict, checked at ms).
pub type VerificationRow = (String, Option<String>, String, i64);

/// A page request.
#[derive(Debug, Clone)]
pub struct TimelineQuery {
    /// The server (already checked to be the account's).
    pub server_id: ServerId,
    /// Nothing before this time (ms): the later of the caller's `since` and the plan's retention.
    pub since_ms: i64,
    /// Nothing after this time (ms, inclusive): the retrospective's window end.
    pub until_ms: Option<i64>,
    /// Only items strictly older than this position (the previous page's last item).
    pub before: Option<TimelineKey>,
    /// Which events to read.
    pub events: Vec<TimelineEvent>,
    /// At most this many.
    pub limit: u32,
    /// The oldest items first instead of the newest (the retrospective reads a window's start);
    /// `before` still bounds from above.
    pub oldest_first: bool,
}

/// A tenant's server timelines. Built by [`Account::timeline`].
pub struct Timeline<'a> {
    pub(super) account: Account<'a>,
}

impl Timeline<'_> {
    /// The newest `query.limit` items before the cursor, newest first, in the timeline's order
    /// (or the oldest, oldest first, with `oldest_first`).
    pub async fn page(&self, query: &TimelineQuery) -> Result<Vec<TimelineItem>, MttrlyError> {
        let (account, query) = (self.account.id.clone(), query.clone());
        self.account.db.sqlite.read(move |conn| sqlite::timeline::page(conn, &account, &query)).await
    }

    /// The server's latest deploy verifier run: (id, deploy id, verdict, checked at ms).
    pub async fn latest_verification(
        &self,
        server: &ServerId,
        until_ms: i64,
    ) -> Result<Option<VerificationRow>, MttrlyError> {
        let (account, server) = (self.account.id.clone(), server.clone());
        self.account
            .db
            .sqlite
            .read(move |conn| sqlite::timeline::latest_verification(conn, &account, &server, until_ms))
            .await
    }

    /// The incident window of an investigation (or the server's latest one when `id` is `None`):
    /// (id, title, opened at, closed at, its alert's opening), or `None`.
    pub async fn investigation(
        &self,
        server: &ServerId,
        id: Option<&str>,
    ) -> Result<Option<InvestigationWindow>, MttrlyError> {
        let (account, server, id) = (self.account.id.clone(), server.clone(), id.map(str::to_owned));
        self.account
            .db
            .sqlite
            .read(move |conn| sqlite::timeline::investigation(conn, &account, &server, id.as_deref()))
            .await
    }

    /// The server's latest alert: (id, summary, opened at, resolved at).
    pub async fn latest_alert(&self, server: &ServerId) -> Result<Option<AlertWindow>, MttrlyError> {
        let (account, server) = (self.account.id.clone(), server.clone());
        self.account.db.sqlite.read(move |conn| sqlite::timeline::latest_alert(conn, &account, &server)).await
    }
}

/// An investigation's window, for a retrospective.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvestigationWindow {
    /// Its id.
    pub id: String,
    /// Its title.
    pub title: String,
    /// Opened (ms).
    pub opened_at: i64,
    /// Closed (ms), if it is.
    pub closed_at: Option<i64>,
    /// Its alert's opening (ms), if it names one.
    pub alert_opened_at: Option<i64>,
}

/// An alert's window, for a retrospective.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertWindow {
    /// Its id.
    pub id: String,
    /// Its summary.
    pub summary: String,
    /// Opened (ms).
    pub opened_at: i64,
    /// Resolved (ms), if it is.
    pub resolved_at: Option<i64>,
}
