//! Investigations and their bypasses (issue 15): the rows and the named operations.
//!
//! Every change that other changes could race with is one IMMEDIATE transaction here: opening
//! or resuming (one open investigation per human, client and server, held by a partial unique
//! index), asking for a bypass (a compare-and-swap on `investigations.version`), granting it
//! (pending → active, conditional on the request still pending and the investigation still
//! open), revoking, closing (which revokes). Consuming a slot is not here: it happens inside the
//! action's own create transaction (`sqlite::actions::create_linked`), so the slot and the action
//! are one commit.

use mttrly_core::ids::{AccountId, ActionId, AlertId, BypassId, InvestigationId, ServerId, UserId};
use mttrly_core::tools::common::Severity;
use mttrly_core::tools::investigations::{ArgvPattern, BypassStatus, BypassTools, GrantScope, InvestigationStatus};
use mttrly_core::{MttrlyError, Principal};

use super::{Account, Maintenance, sqlite};

/// An investigation as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvestigationRow {
    /// Its handle.
    pub id: InvestigationId,
    /// Its tenant.
    pub account_id: AccountId,
    /// The server under investigation.
    pub server_id: ServerId,
    /// The human it is bound to.
    pub user_id: UserId,
    /// The client it is bound to: the OAuth grant (`oauth_…`) or the API token (`tok_…`).
    pub client: String,
    /// The client's self-reported name (for people reading the list; never a binding).
    pub client_name: String,
    /// The assistant's title (its words: shown labelled, through `display::text`).
    pub title: String,
    /// The alert it started from.
    pub alert_id: Option<AlertId>,
    /// Open or closed.
    pub status: InvestigationStatus,
    /// Opened (ms).
    pub opened_at: i64,
    /// Last call under it (ms).
    pub last_activity_at: i64,
    /// Closed (ms).
    pub closed_at: Option<i64>,
    /// Why it closed: `closed` (a person), `idle` (the sweep), `server_removed`.
    pub close_reason: Option<String>,
    /// Bumped by every change of its bypass or status: the compare-and-swap of a bypass request.
    pub version: i64,
}

/// A bypass as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BypassRow {
    /// Its id.
    pub id: BypassId,
    /// Its tenant.
    pub account_id: AccountId,
    /// The investigation it belongs to.
    pub investigation_id: InvestigationId,
    /// The server it covers.
    pub server_id: ServerId,
    /// Tools, patterns, minutes and count: as asked while pending, as granted once active.
    pub scope: GrantScope,
    /// As stored (see [`BypassRow::status_at`] for the status at a moment).
    pub status: BypassStatus,
    /// Asked for (ms).
    pub requested_at: i64,
    /// Who asked (the assistant, for its human).
    pub requested_by: Principal,
    /// The assistant's reason, if any.
    pub reason: Option<String>,
    /// The human who granted it.
    pub granted_by: Option<UserId>,
    /// Their name when they granted it.
    pub granted_by_name: Option<String>,
    /// Granted (ms).
    pub granted_at: Option<i64>,
    /// Pending: when the request lapses; active: when the grant ends (ms).
    pub expires_at: i64,
    /// Commands run under it.
    pub actions_used: u32,
    /// Revoked (ms).
    pub revoked_at: Option<i64>,
}

impl BypassRow {
    /// The status at `now` (ms): a pending or active row past its time is expired even before
    /// the sweep marks it, so nothing reads a stale `active`.
    pub fn status_at(&self, now: i64) -> BypassStatus {
        match self.status {
            BypassStatus::Pending | BypassStatus::Active if self.expires_at <= now => BypassStatus::Expired,
            other => other,
        }
    }

    /// Slots left at `now` (0 unless active).
    pub fn remaining_at(&self, now: i64) -> u32 {
        if self.status_at(now) == BypassStatus::Active {
            self.scope.max_actions.saturating_sub(self.actions_used)
        } else {
            0
        }
    }

    /// The granter as a principal (always a human).
    pub fn granter(&self) -> Option<Principal> {
        Some(Principal::Human { user_id: self.granted_by.clone()?, name: self.granted_by_name.clone()? })
    }
}

/// What [`Investigations::request_bypass`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requested {
    /// Stored, pending; the investigation's version moved on.
    Stored,
    /// The investigation is closed (nothing written).
    Closed,
    /// A pending or active bypass exists (nothing written).
    AlreadyLive(Box<BypassRow>),
    /// The investigation changed since it was read (`expected_version`; nothing written).
    Raced,
    /// No such investigation in this account.
    Missing,
}

/// What [`Investigations::grant`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Granted {
    /// Active now, as returned.
    Active(Box<BypassRow>),
    /// It was no longer pending, had lapsed, or its investigation closed (nothing written).
    NotPending,
}

/// An action linked to an investigation, for its page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkedAction {
    /// The action.
    pub id: ActionId,
    /// Its state, as stored.
    pub status: String,
    /// Central's description of it.
    pub description: String,
    /// The bypass it ran under, if any.
    pub bypass_id: Option<BypassId>,
    /// Created (ms).
    pub created_at: i64,
}

/// What the sweep closed or expired, for the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Swept {
    /// An investigation idle past its lifetime, closed (its live bypass revoked with it).
    Closed(InvestigationRow, Option<BypassId>),
    /// A bypass whose time ran out, or a request nobody granted in time.
    Expired(BypassRow),
}

/// A tenant's investigations. Built by [`Account::investigations`]; every operation filters on
/// the account, so another tenant's handle finds nothing.
pub struct Investigations<'a> {
    account: Account<'a>,
}

impl<'a> Account<'a> {
    /// Its investigations and their bypasses.
    pub fn investigations(self) -> Investigations<'a> {
        Investigations { account: self }
    }
}

impl Investigations<'_> {
    /// Opens `new` unless the same human, client and server already have an open investigation
    /// active within `idle_ms`: then that one is resumed (its activity renewed) and returned with
    /// `true`. One that went idle meanwhile is closed first (reason `idle`, its bypass revoked).
    pub async fn open_or_resume(
        &self,
        new: InvestigationRow,
        idle_ms: i64,
        now: i64,
    ) -> Result<(InvestigationRow, bool), MttrlyError> {
        self.check_account(&new.account_id)?;
        self.account.db.sqlite.call(move |conn| sqlite::investigations::open_or_resume(conn, &new, idle_ms, now)).await
    }

    /// The account's investigation, or `None`.
    pub async fn get(&self, id: &InvestigationId) -> Result<Option<InvestigationRow>, MttrlyError> {
        let (account, id) = (self.account.id.clone(), id.clone());
        self.account.db.sqlite.read(move |conn| sqlite::investigations::get(conn, &account, &id)).await
    }

    /// Up to `limit` investigations, newest first (only open ones when `open_only`), each with
    /// its latest bypass.
    pub async fn list(
        &self,
        open_only: bool,
        server: Option<&ServerId>,
        limit: u32,
    ) -> Result<Vec<(InvestigationRow, Option<BypassRow>)>, MttrlyError> {
        let (account, server) = (self.account.id.clone(), server.cloned());
        self.account
            .db
            .sqlite
            .read(move |conn| sqlite::investigations::list(conn, &account, open_only, server.as_ref(), limit))
            .await
    }

    /// Renews an open investigation's activity at `now` (ms).
    pub async fn touch(&self, id: &InvestigationId, now: i64) -> Result<(), MttrlyError> {
        let (account, id) = (self.account.id.clone(), id.clone());
        self.account.db.sqlite.call(move |conn| sqlite::investigations::touch(conn, &account, &id, now)).await
    }

    /// Closes an open investigation with `reason`, revoking its pending or active bypass in the
    /// same transaction. Returns the closed row and the revoked bypass's id, or `None` when it
    /// was already closed or is not this account's.
    pub async fn close(
        &self,
        id: &InvestigationId,
        reason: &str,
        now: i64,
    ) -> Result<Option<(InvestigationRow, Option<BypassId>)>, MttrlyError> {
        let (account, id, reason) = (self.account.id.clone(), id.clone(), reason.to_owned());
        self.account.db.sqlite.call(move |conn| sqlite::investigations::close(conn, &account, &id, &reason, now)).await
    }

    /// Stores `bypass` as pending if its investigation is open, still at `expected_version`, and
    /// has no pending or active bypass at `now`; bumps the version. One transaction.
    pub async fn request_bypass(
        &self,
        bypass: BypassRow,
        expected_version: i64,
        now: i64,
    ) -> Result<Requested, MttrlyError> {
        self.check_account(&bypass.account_id)?;
        self.account
            .db
            .sqlite
            .call(move |conn| sqlite::investigations::request_bypass(conn, &bypass, expected_version, now))
            .await
    }

    /// The investigation's latest bypass, if any was asked for.
    pub async fn latest_bypass(&self, investigation: &InvestigationId) -> Result<Option<BypassRow>, MttrlyError> {
        let (account, id) = (self.account.id.clone(), investigation.clone());
        self.account.db.sqlite.read(move |conn| sqlite::investigations::latest_bypass(conn, &account, &id)).await
    }

    /// The account's bypass by id.
    pub async fn bypass(&self, id: &BypassId) -> Result<Option<BypassRow>, MttrlyError> {
        let (account, id) = (self.account.id.clone(), id.clone());
        self.account.db.sqlite.read(move |conn| sqlite::investigations::bypass(conn, &account, &id)).await
    }

    /// The bypass `action` ran under, if it ran under one.
    pub async fn bypass_of_action(
        &self,
        action: &mttrly_core::ids::ActionId,
    ) -> Result<Option<BypassRow>, MttrlyError> {
        let (account, action) = (self.account.id.clone(), action.clone());
        self.account.db.sqlite.read(move |conn| sqlite::investigations::bypass_of_action(conn, &account, &action)).await
    }

    /// Grants a pending bypass with `scope` (already checked to narrow the request) by `granter`
    /// at `now`: active until `now + scope.minutes`. Conditional on it still pending, not lapsed,
    /// and its investigation open; bumps the investigation's version.
    pub async fn grant(
        &self,
        id: &BypassId,
        scope: GrantScope,
        granter: (UserId, String),
        now: i64,
    ) -> Result<Granted, MttrlyError> {
        let (account, id) = (self.account.id.clone(), id.clone());
        self.account
            .db
            .sqlite
            .call(move |conn| sqlite::investigations::grant(conn, &account, &id, &scope, &granter, now))
            .await
    }

    /// Revokes the investigation's pending or active bypass at `now`; returns the latest bypass
    /// afterwards (so revoking twice answers the same revoked row).
    pub async fn revoke(&self, investigation: &InvestigationId, now: i64) -> Result<Option<BypassRow>, MttrlyError> {
        let (account, id) = (self.account.id.clone(), investigation.clone());
        self.account.db.sqlite.call(move |conn| sqlite::investigations::revoke(conn, &account, &id, now)).await
    }

    /// Denies the pending bypass `id` at `now` (revoked; only while pending and not lapsed):
    /// whether it was denied now, and the bypass as it stands afterwards.
    pub async fn deny(&self, id: &BypassId, now: i64) -> Result<(bool, Option<BypassRow>), MttrlyError> {
        let (account, id) = (self.account.id.clone(), id.clone());
        self.account.db.sqlite.call(move |conn| sqlite::investigations::deny(conn, &account, &id, now)).await
    }

    /// The actions created under the investigation, newest first (at most `limit`).
    pub async fn actions(&self, investigation: &InvestigationId, limit: u32) -> Result<Vec<LinkedAction>, MttrlyError> {
        let (account, id) = (self.account.id.clone(), investigation.clone());
        self.account
            .db
            .sqlite
            .read(move |conn| sqlite::investigations::linked_actions(conn, &account, &id, limit))
            .await
    }

    /// The severity of `alert` when it is one of this account's alerts about `server` (`None`
    /// otherwise: unknown, another account's, another server's).
    pub async fn alert_severity(&self, alert: &AlertId, server: &ServerId) -> Result<Option<Severity>, MttrlyError> {
        let (account, alert, server) = (self.account.id.clone(), alert.clone(), server.clone());
        self.account
            .db
            .sqlite
            .read(move |conn| sqlite::investigations::alert_severity(conn, &account, &alert, &server))
            .await
    }

    fn check_account(&self, account: &AccountId) -> Result<(), MttrlyError> {
        if account == self.account.id {
            return Ok(());
        }
        tracing::error!("refused to store an investigation row under another account's handle");
        Err(MttrlyError::new(mttrly_core::ErrorCode::InternalError, "internal database error"))
    }
}

impl Maintenance<'_> {
    /// Closes every open investigation idle for `idle_ms` at `now` (revoking its bypass) and marks
    /// every pending or active bypass past its time expired; returns what changed.
    pub async fn sweep_investigations(&self, now: i64, idle_ms: i64) -> Result<Vec<Swept>, MttrlyError> {
        self.db.sqlite.call(move |conn| sqlite::investigations::sweep(conn, now, idle_ms)).await
    }
}

/// Rebuilds a stored scope (tools and patterns from their JSON columns).
pub(super) fn scope_from_columns(
    tools_json: &str,
    pins_json: &str,
    minutes: u32,
    max_actions: u32,
) -> Option<GrantScope> {
    let tools: BypassTools = serde_json::from_str(tools_json).ok()?;
    let patterns: Vec<ArgvPattern> = serde_json::from_str(pins_json).ok()?;
    Some(GrantScope { tools, patterns, minutes, max_actions })
}

#[cfg(test)]
mod tests {
    use mttrly_core::tools::investigations::{BypassTool, BypassTools};

    use super::*;

    fn row(status: BypassStatus, expires_at: i64, used: u32) -> BypassRow {
        BypassRow {
            id: BypassId::generate(),
            account_id: AccountId::generate(),
            investigation_id: InvestigationId::generate(),
            server_id: ServerId::generate(),
            scope: GrantScope {
                tools: BypassTools::new([BypassTool::ExecuteCommand]).unwrap(),
                patterns: Vec::new(),
                minutes: 15,
                max_actions: 3,
            },
            status,
            requested_at: 0,
            requested_by: Principal::Human { user_id: UserId::generate(), name: "ann".into() },
            reason: None,
            granted_by: None,
            granted_by_name: None,
            granted_at: None,
            expires_at,
            actions_used: used,
            revoked_at: None,
        }
    }

    #[test]
    fn a_grant_past_its_time_reads_expired_with_nothing_left() {
        assert_eq!(row(BypassStatus::Active, 100, 1).status_at(99), BypassStatus::Active);
        assert_eq!(row(BypassStatus::Active, 100, 1).remaining_at(99), 2);
        assert_eq!(row(BypassStatus::Active, 100, 1).status_at(100), BypassStatus::Expired);
        assert_eq!(row(BypassStatus::Active, 100, 1).remaining_at(100), 0);
        assert_eq!(row(BypassStatus::Pending, 100, 0).status_at(150), BypassStatus::Expired);
        assert_eq!(row(BypassStatus::Revoked, 100, 0).status_at(150), BypassStatus::Revoked, "revoked stays revoked");
        assert_eq!(row(BypassStatus::Exhausted, 1_000, 3).remaining_at(0), 0);
    }
}
