//! Investigations and their second-factor approval bypasses.

use serde::{Deserialize, Serialize};

use super::common::Reason;
use crate::bounded::{bounded_int, bounded_text};
use crate::ids::{AlertId, InvestigationId, ServerId};
use crate::principal::Principal;

bounded_text!(
    /// A short title (1 to 200 characters).
    Title, min 1, max 200
);

/// Arguments of `mttrly_start_investigation`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StartInvestigationInput {
    /// The server under investigation.
    pub server_id: ServerId,
    /// What is being investigated.
    pub title: Title,
    /// The alert that started it, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert_id: Option<AlertId>,
}

/// Whether an investigation is still going.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum InvestigationStatus {
    /// Open.
    Open,
    /// Closed; it can no longer acquire a bypass.
    Closed,
}

/// An investigation bound to an assistant session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Investigation {
    /// The investigation's id.
    pub investigation_id: InvestigationId,
    /// The server.
    pub server_id: ServerId,
    /// Its title.
    pub title: String,
    /// Open or closed.
    pub status: InvestigationStatus,
    /// When it was opened.
    pub opened_at: jiff::Timestamp,
    /// Whether an existing open investigation was resumed instead of a new one created.
    pub resumed: bool,
}

/// Arguments of `mttrly_get_investigation_bypass`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetInvestigationBypassInput {
    /// The investigation.
    pub investigation_id: InvestigationId,
}

bounded_int!(
    /// How long the bypass lasts, in minutes (5 to 60, default 15).
    BypassMinutes: u32, min 5, max 60, default 15
);

bounded_int!(
    /// How many commands may run under the bypass (1 to 50, default 10).
    BypassMaxActions: u32, min 1, max 50, default 10
);

/// Arguments of `mttrly_acquire_investigation_bypass`. The second factor is asked of the human
/// by the server, never passed by the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AcquireInvestigationBypassInput {
    /// The open investigation.
    pub investigation_id: InvestigationId,
    /// How long the bypass lasts.
    #[serde(default)]
    pub duration_minutes: BypassMinutes,
    /// How many commands may run under it.
    #[serde(default)]
    pub max_actions: BypassMaxActions,
}

/// Arguments of `mttrly_revoke_investigation_bypass`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeInvestigationBypassInput {
    /// The investigation.
    pub investigation_id: InvestigationId,
    /// Why, recorded in the audit log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
}

/// Where a bypass stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BypassStatus {
    /// No bypass was ever acquired.
    None,
    /// Commands skip per-command approval.
    Active,
    /// Its time ran out.
    Expired,
    /// Its action budget is used up.
    Exhausted,
    /// Someone revoked it.
    Revoked,
}

/// An investigation's bypass.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BypassState {
    /// The investigation.
    pub investigation_id: InvestigationId,
    /// Where the bypass stands.
    pub status: BypassStatus,
    /// Who acquired it (always a human, after a second factor).
    pub acquired_by: Option<Principal>,
    /// When it ends.
    pub expires_at: Option<jiff::Timestamp>,
    /// How many commands it allows.
    pub max_actions: u32,
    /// How many it has used.
    pub actions_used: u32,
}
