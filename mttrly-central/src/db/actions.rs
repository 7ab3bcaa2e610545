//! Actions and the human decisions on them.

use std::collections::HashMap;

use mttrly_core::action::{ActionContent, ActionState};
use mttrly_core::ids::{AccountId, ActionId, BypassId, InvestigationId, ServerId};
use mttrly_core::tools::actions::{ApprovalRecord, ExecutionResult};
use mttrly_core::{Environment, ErrorCode, MttrlyError, Principal, Source};

use super::{Account, now_ms, sqlite};

/// An action as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionRow {
    /// Its id.
    pub id: ActionId,
    /// Its tenant.
    pub account_id: AccountId,
    /// The target server.
    pub server_id: ServerId,
    /// The server's name (joined in).
    pub server_name: String,
    /// The server's environment when the action was requested.
    pub environment: Environment,
    /// Exactly what runs.
    pub content: ActionContent,
    /// SHA-256 of the canonical content, hex.
    pub content_sha256: String,
    /// One line for humans, written by central from the content.
    pub description: String,
    /// Why the requester says it is needed: their own words, never a fact (shown last, labelled).
    pub reason: Option<String>,
    /// Who asked.
    pub requested_by: Principal,
    /// Through which channel.
    pub requested_via: Source,
    /// Where it stands.
    pub status: ActionState,
    /// Distinct human approvals needed.
    pub approvals_required: u32,
    /// Created (ms).
    pub created_at: i64,
    /// Last state change (ms).
    pub updated_at: i64,
    /// Expiry of the pending state (ms).
    pub expires_at: i64,
    /// The outcome, once it ran.
    pub result: Option<ExecutionResult>,
}

impl ActionRow {
    /// This action as it runs under an investigation bypass: running at once, with the grant as
    /// the one human approval that covers it (so the agent runs it as human-approved), and
    /// `description` (which names the bypass and its granter) for the approver-facing text.
    #[must_use]
    pub fn under_bypass(self, description: String) -> Self {
        Self { status: ActionState::Running, approvals_required: 1, description, ..self }
    }
}

/// What links a new action to an investigation, and the bypass it may run under.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActionLink {
    /// The caller's investigation the action is created under.
    pub investigation_id: Option<InvestigationId>,
    /// The investigation's active bypass, already checked to cover this call: a slot of it is
    /// taken in the create transaction if one is left (else the action waits as usual).
    pub bypass: Option<BypassClaim>,
}

/// A bypass an action asks to run under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BypassClaim {
    /// The bypass.
    pub bypass_id: BypassId,
    /// The action's description if it runs under it.
    pub description: String,
    /// Who granted it (recorded with the action's creation when it runs under it).
    pub granted_by: Option<mttrly_core::Principal>,
    /// When it was granted (ms).
    pub granted_at: Option<i64>,
}

/// What [`Actions::create`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    /// The action (and its payload) is stored.
    Stored,
    /// Stored running under its bypass (see [`ActionRow::under_bypass`]), one slot taken in the
    /// same transaction; `remaining` slots are left.
    Bypassed {
        /// Slots left after this one.
        remaining: u32,
    },
    /// Refused: `pending` actions already wait on the server (the cap), the first of them
    /// expiring at `first_expiry`. Nothing was written.
    CapReached {
        /// How many wait.
        pending: u32,
        /// When the first of them expires (ms).
        first_expiry: Option<i64>,
    },
}

/// A tenant's actions. Built by [`Account::actions`]; every operation on one action also
/// filters on the account, so an id from another tenant finds nothing.
pub struct Actions<'a> {
    pub(super) account: Account<'a>,
}

impl Actions<'_> {
    /// Stores a new action (of this account) and its payload in one transaction; a pending one
    /// only while fewer than `cap` actions wait on its server at `now` (ms), so concurrent
    /// submissions cannot slip past the cap.
    pub async fn create(
        &self,
        action: ActionRow,
        payload: Option<Vec<u8>>,
        cap: u32,
        now: i64,
    ) -> Result<Created, MttrlyError> {
        if action.account_id != *self.account.id {
            tracing::error!(action = %action.id, "refused to store an action under another account's handle");
            return Err(MttrlyError::new(ErrorCode::InternalError, "internal database error"));
        }
        self.create_linked(action, payload, cap, now, ActionLink::default()).await
    }

    /// [`Actions::create`] under an investigation: the action is linked to it (and its activity
    /// renewed) and, with a bypass claim, runs under the bypass when a slot is taken in the same
    /// transaction, so 2N concurrent calls on N slots run exactly N.
    pub async fn create_linked(
        &self,
        action: ActionRow,
        payload: Option<Vec<u8>>,
        cap: u32,
        now: i64,
        link: ActionLink,
    ) -> Result<Created, MttrlyError> {
        if action.account_id != *self.account.id {
            tracing::error!(action = %action.id, "refused to store an action under another account's handle");
            return Err(MttrlyError::new(ErrorCode::InternalError, "internal database error"));
        }
        self.account
            .db
            .sqlite
            .call(move |conn| sqlite::actions::create_linked(conn, &action, payload.as_deref(), cap, now, &link))
            .await
    }

    /// The account's action, or `None`.
    pub async fn get(&self, id: &ActionId) -> Result<Option<ActionRow>, MttrlyError> {
        let (account, id) = (self.account.id.clone(), id.clone());
        self.account.db.sqlite.read(move |conn| sqlite::actions::get(conn, &account, &id)).await
    }

    /// The account's actions, newest first, optionally of one server and in one state.
    pub async fn list(
        &self,
        server: Option<&ServerId>,
        status: Option<ActionState>,
        limit: u32,
    ) -> Result<Vec<ActionRow>, MttrlyError> {
        let (account, server) = (self.account.id.clone(), server.cloned());
        self.account
            .db
            .sqlite
            .read(move |conn| sqlite::actions::list(conn, &account, server.as_ref(), status, limit))
            .await
    }

    /// Up to `limit` of the account's pending actions (optionally of one server), newest first,
    /// with how many approvals each has: one trip for both.
    pub async fn pending_with_approvals(
        &self,
        server: Option<&ServerId>,
        limit: u32,
    ) -> Result<(Vec<ActionRow>, HashMap<ActionId, u32>), MttrlyError> {
        let (account, server) = (self.account.id.clone(), server.cloned());
        self.account
            .db
            .sqlite
            .read(move |conn| {
                let pending = Some(ActionState::PendingApproval);
                let rows = sqlite::actions::list(conn, &account, server.as_ref(), pending, limit)?;
                Ok((rows, sqlite::actions::approval_counts(conn, &account)?))
            })
            .await
    }

    /// How many actions wait for a decision on `server` at `now` (ms; expired ones no longer
    /// count, even before the sweeper marks them), and when the first of them expires.
    pub async fn pending_on_server(&self, server: &ServerId, now: i64) -> Result<(u32, Option<i64>), MttrlyError> {
        let (account, server) = (self.account.id.clone(), server.clone());
        self.account.db.sqlite.read(move |conn| sqlite::actions::pending_on_server(conn, &account, &server, now)).await
    }

    /// The decisions on an action, oldest first.
    pub async fn decisions(&self, id: &ActionId) -> Result<Vec<ApprovalRecord>, MttrlyError> {
        let (account, id) = (self.account.id.clone(), id.clone());
        self.account.db.sqlite.read(move |conn| sqlite::actions::decisions(conn, &account, &id)).await
    }

    /// The bytes an action carries (a file write's new content), if any.
    pub async fn payload(&self, id: &ActionId) -> Result<Option<Vec<u8>>, MttrlyError> {
        let (account, id) = (self.account.id.clone(), id.clone());
        self.account.db.sqlite.read(move |conn| sqlite::actions::payload(conn, &account, &id)).await
    }

    /// Moves an action from `from` to `to` (stamped now, with `result` if given) if it is still
    /// in `from`; returns whether it moved. The condition makes racing moves safe: only one wins.
    pub async fn transition(
        &self,
        id: &ActionId,
        from: ActionState,
        to: ActionState,
        result: Option<ExecutionResult>,
    ) -> Result<bool, MttrlyError> {
        let (account, id) = (self.account.id.clone(), id.clone());
        self.account
            .db
            .sqlite
            .call(move |conn| sqlite::actions::transition(conn, &account, &id, from, to, now_ms(), result.as_ref()))
            .await
    }

    /// Marks a running action failed with `result` because it never reached its agent, giving
    /// back the bypass slot it took in the same transaction (see
    /// `sqlite::actions::fail_undispatched`). Returns (moved, slot returned).
    pub async fn fail_undispatched(&self, id: &ActionId, result: ExecutionResult) -> Result<(bool, bool), MttrlyError> {
        let (account, id) = (self.account.id.clone(), id.clone());
        self.account
            .db
            .sqlite
            .call(move |conn| sqlite::actions::fail_undispatched(conn, &account, &id, &result, now_ms()))
            .await
    }

    /// Records `who`'s approval of the content with `content_sha256` through `channel`, in one
    /// transaction; when `quorum_reached`, also moves the action pending → approved → running,
    /// conditional on it still being pending (`VALIDATION_ERROR` if someone decided meanwhile).
    pub async fn approve(
        &self,
        id: &ActionId,
        who: &Principal,
        channel: Source,
        content_sha256: &str,
        quorum_reached: bool,
    ) -> Result<(), MttrlyError> {
        let (account, id, who, sha) = (self.account.id.clone(), id.clone(), who.clone(), content_sha256.to_owned());
        self.account
            .db
            .sqlite
            .call(move |conn| sqlite::actions::approve(conn, &account, &id, &who, channel, &sha, quorum_reached))
            .await
    }

    /// Records `who`'s rejection and moves the action pending → rejected, in one transaction,
    /// conditional on it still being pending (`VALIDATION_ERROR` if someone decided meanwhile).
    pub async fn reject(
        &self,
        id: &ActionId,
        who: &Principal,
        channel: Source,
        content_sha256: &str,
        reason: Option<&str>,
    ) -> Result<(), MttrlyError> {
        let (account, id, who, sha) = (self.account.id.clone(), id.clone(), who.clone(), content_sha256.to_owned());
        let reason = reason.map(str::to_owned);
        self.account
            .db
            .sqlite
            .call(move |conn| sqlite::actions::reject(conn, &account, &id, &who, channel, &sha, reason.as_deref()))
            .await
    }
}
